package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-registry/berth/internal/testenv"
)

// TestQuickRunProducesTable runs the whole harness in -quick mode so that
// it cannot rot: every scenario must run against both servers and the
// table must land in the output file. It checks that the harness works,
// never what the numbers are.
func TestQuickRunProducesTable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts both registries and pushes some hundred MiB")
	}
	testenv.Tool(t, "registry") // CNCF Distribution, from scripts/tools.sh
	out := filepath.Join(t.TempDir(), "benchmarks.md")
	var log strings.Builder
	res, err := run(context.Background(), options{quick: true, out: out}, io.MultiWriter(&log, testWriter{t}))
	if err != nil {
		t.Fatalf("quick run: %v", err)
	}
	ids := map[string]bool{}
	for _, r := range res.rows {
		ids[r.id] = true
		if r.skipped == "" && (r.dist <= 0 || r.berth <= 0) && !(r.id == "10b" && r.dist >= 0 && r.berth >= 0) && !((r.id == "11d" || r.id == "11e") && r.dist == 0 && r.berth >= 0) {
			// 10b may round to zero: /proc counts CPU in 10 ms ticks, and
			// a quick run's registry work is about that. 11d and 11e's
			// first server has no endpoint, and its second may deliver
			// everything during the GETs (or nothing).
			t.Errorf("row %s has a non-positive value: distribution %v, berth %v", r.id, r.dist, r.berth)
		}
	}
	for _, id := range []string{"1", "2", "3", "4", "5", "5b", "5c", "6", "6b", "6c", "7", "7b", "7c", "7r", "7rb", "7rc", "8", "8b", "9", "9b", "9c", "9d", "10", "10b", "10c", "10d", "11", "11b", "11c", "11d", "11e", "12", "12b", "12c"} {
		if !ids[id] {
			t.Errorf("no row %s in the results", id)
		}
	}
	doc, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), res.table()) || !strings.Contains(string(doc), endMark) {
		t.Errorf("output file lacks the table:\n%s", doc)
	}
}

// TestWriteDocKeepsTheAnalysis checks that a run replaces only its own
// backend's section of the page.
func TestWriteDocKeepsTheAnalysis(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.md")
	page := "# Benchmarks\n\nintro\n\n" + beginMark + "filesystem -->\nold\n" + endMark + "\n\n## Analysis\n\nkept\n"
	if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &results{backend: "filesystem", sizes: quickSizes, rows: []result{{row: row{id: "1", name: "x", unit: "MB/s", target: 1}, dist: 1, berth: 2}}}
	if err := r.writeDoc(path); err != nil {
		t.Fatal(err)
	}
	// The shaped and the unshaped object-store runs each have a section.
	for _, shape := range []string{defaultWAN.String(), "MinIO on loopback, unshaped (WAN=off)"} {
		s3 := &results{backend: "s3", shape: shape, sizes: quickSizes}
		if err := s3.writeDoc(path); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	got := string(b)
	for _, want := range []string{"intro", "## Analysis\n\nkept", "| 1 | x | MB/s | 1.00 | 2.00 | 2.00× |", beginMark + "s3 -->", beginMark + "s3-unshaped -->", "toxiproxy"} {
		if !strings.Contains(got, want) {
			t.Errorf("page lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "old") {
		t.Errorf("old table kept:\n%s", got)
	}
}

// TestServerCPUReadsTheProcessesTime reads this test's own process
// through server.cpu and compares it with what getrusage says of it: a
// wrong field of /proc/<pid>/stat would not follow the CPU just burnt.
func TestServerCPUReadsTheProcessesTime(t *testing.T) {
	s := &server{cmd: &exec.Cmd{Process: &os.Process{Pid: os.Getpid()}}}
	before, err := s.cpu()
	if err != nil {
		t.Fatal(err)
	}
	self0 := selfCPU()
	x := burnCPU(300 * time.Millisecond)
	after, err := s.cpu()
	if err != nil {
		t.Fatal(err)
	}
	got, want := after-before, selfCPU()-self0
	// getrusage counts in microseconds, and both read while this test's
	// other threads run; allow a few milliseconds.
	if d := got - want; d < -5*time.Millisecond || d > 5*time.Millisecond {
		t.Errorf("server.cpu went up by %v while getrusage saw %v (x=%d)", got, want, x)
	}

	// The children's part (docker's CLI and compressors are counted so):
	// a child that burns CPU and is waited for must show in it.
	st0, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// dockerCPU walks the process tree by these two.
	if comm := filepath.Base(os.Args[0]); st0.ppid != os.Getppid() || !strings.HasPrefix(comm, st0.comm) || st0.comm == "" {
		t.Errorf("readStat: command %q, parent %d; want a prefix of %q, parent %d", st0.comm, st0.ppid, comm, os.Getppid())
	}
	kids0 := childrenCPU()
	child := exec.Command(os.Args[0])
	child.Env = append(os.Environ(), burnEnv+"=1")
	if out, err := child.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	st1, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	got, want = st1.reaped-st0.reaped, childrenCPU()-kids0
	if want < 50*time.Millisecond {
		t.Fatalf("the child burnt only %v of CPU: too little to compare", want)
	}
	if d := got - want; d < -40*time.Millisecond || d > 40*time.Millisecond {
		t.Errorf("readStat's children's time went up by %v while getrusage saw %v", got, want)
	}
}

// TestServerCPUKeepsEndedThreads burns CPU on a thread that then ends: a
// sum over /proc/<pid>/task would lose it with the thread, the process's
// CPU clock keeps it.
func TestServerCPUKeepsEndedThreads(t *testing.T) {
	s := &server{cmd: &exec.Cmd{Process: &os.Process{Pid: os.Getpid()}}}
	before, err := s.cpu()
	if err != nil {
		t.Fatal(err)
	}
	type burn struct {
		tid int
		cpu time.Duration
	}
	var b burn
	for range 3 {
		done := make(chan burn)
		go func() {
			// Locked and never unlocked: the thread ends with the
			// goroutine, some time after the send below. Not the main
			// thread, which the runtime keeps (seen in CI: "did not
			// end"); left locked, it is not used again, and the next
			// try runs on another.
			runtime.LockOSThread()
			if unix.Gettid() == os.Getpid() {
				done <- burn{}
				return
			}
			start := threadCPU()
			burnCPU(200 * time.Millisecond)
			done <- burn{unix.Gettid(), threadCPU() - start}
		}()
		if b = <-done; b.tid != 0 {
			break
		}
	}
	if b.tid == 0 {
		t.Fatal("no goroutine ran off the main thread in three tries")
	}
	burnt := b.cpu
	// Read only once the thread is gone, or a sum over the live threads
	// would still see it.
	task := fmt.Sprintf("/proc/self/task/%d", b.tid)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(task); errors.Is(err, fs.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("thread %d did not end", b.tid)
		}
	}
	after, err := s.cpu()
	if err != nil {
		t.Fatal(err)
	}
	if got := after - before; got < burnt {
		t.Errorf("server.cpu went up by %v while the ended thread alone burnt %v", got, burnt)
	}
}

// threadCPU is the CPU time of the calling thread.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return time.Duration(ts.Nano())
}

// burnEnv makes the test binary, run as a child process, burn 300 ms of
// CPU and exit (see TestMain).
const burnEnv = "BERTH_BENCH_BURN_CPU"

func TestMain(m *testing.M) {
	if os.Getenv(burnEnv) != "" {
		if burnCPU(300*time.Millisecond) == 42 { // never: the result is used
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// burnCPU computes for d of this process's CPU time and returns a value
// the caller uses, so that the work is not optimised away.
func burnCPU(d time.Duration) uint64 {
	start, x := selfCPU(), uint64(1)
	for selfCPU()-start < d {
		for range 100000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	return x
}

// testWriter sends the harness's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestRetireSetsSmallFilesAside checks what a stopped server's storage
// becomes: gone from its place, its big files deleted, its small files and
// directories kept in the trash (deleting them would make the next
// measurement's file creations pay for it, see harness.retire).
func TestRetireSetsSmallFilesAside(t *testing.T) {
	h := &harness{work: t.TempDir()}
	dir := filepath.Join(h.work, "data-1")
	small := filepath.Join("blobs", "ab", "small")
	big := filepath.Join("blobs", "cd", "big")
	for name, size := range map[string]int{small: 64 << 10, big: retireBigFile} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.retire(dir)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("retired directory still in place: %v", err)
	}
	kept := filepath.Join(h.trash(), "data-1")
	if fi, err := os.Stat(filepath.Join(kept, small)); err != nil || fi.Size() != 64<<10 {
		t.Errorf("small file not set aside whole: %v", err)
	}
	if _, err := os.Stat(filepath.Join(kept, big)); !os.IsNotExist(err) {
		t.Errorf("big file kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(kept, filepath.Dir(big))); err != nil {
		t.Errorf("directory of the big file not set aside: %v", err)
	}
}

// TestQuickCloudRunShapesTheLink runs the S rows in -quick mode on each
// object store behind the WAN shape, and checks that the shape is in the
// report and that every S row asked for ran. On Azurite only the rows
// whose storage paths differ by backend (writes, reads, listings, the
// seeding of S5 and S6) run, to keep the test short.
func TestQuickCloudRunShapesTheLink(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two object stores, toxiproxy and both registries")
	}
	all := []string{"S1", "S1b", "S1c", "S2", "S2b", "S2c", "S3", "S4", "S4b", "S4c", "S5", "S5b", "S6", "S6b", "S6c", "S7", "S7b", "S7c", "S8", "S8b", "S8c", "S9", "S9b", "S9c", "S9d", "S9e", "S9f"}
	for _, tc := range []struct {
		backend, store, tool, run string
		rows                      []string
	}{
		{"s3", "MinIO", "minio", "", all},
		{"azure", "Azurite", "azurite-blob", "^S[12356]$", []string{"S1", "S2", "S2b", "S2c", "S3", "S5", "S6", "S6c"}},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			testenv.Tool(t, "registry")
			testenv.Tool(t, tc.tool)
			testenv.Tool(t, "toxiproxy-server")
			out := filepath.Join(t.TempDir(), "benchmarks.md")
			res, err := run(context.Background(), options{quick: true, backend: tc.backend, wan: true, out: out, run: tc.run}, testWriter{t})
			if err != nil {
				t.Fatalf("quick run: %v", err)
			}
			ids := map[string]bool{}
			for _, r := range res.rows {
				ids[r.id] = true
			}
			for _, id := range tc.rows {
				if !ids[id] {
					t.Errorf("no row %s in the results", id)
				}
			}
			doc, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(doc), tc.store+" behind toxiproxy") || !strings.Contains(string(doc), beginMark+tc.backend+" -->") {
				t.Errorf("report lacks the link's shape or the %s section:\n%s", tc.backend, doc)
			}
		})
	}
}

// TestQuickGCSRunShapesTheLink runs S1, S2, S3 and S5 in -quick mode on
// fake-gcs-server behind the WAN shape: Distribution must reach the
// emulator too (its uploads start at www.googleapis.com), and the report
// must name the shape.
func TestQuickGCSRunShapesTheLink(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two fake-gcs-servers, toxiproxy and both registries")
	}
	testenv.Tool(t, "registry")
	testenv.Tool(t, "fake-gcs-server")
	testenv.Tool(t, "toxiproxy-server")
	out := filepath.Join(t.TempDir(), "benchmarks.md")
	res, err := run(context.Background(), options{quick: true, backend: "gcs", wan: true, run: "^S[1235]$", out: out}, testWriter{t})
	if err != nil {
		t.Fatalf("quick run: %v", err)
	}
	var ids []string
	for _, r := range res.rows {
		if r.skipped != "" || r.dist <= 0 || r.berth <= 0 {
			t.Errorf("row %s: skipped %q, Distribution %v, Berth %v", r.id, r.skipped, r.dist, r.berth)
		}
		ids = append(ids, r.id)
	}
	if want := []string{"S1", "S2", "S3", "S5"}; !slices.Equal(ids, want) {
		t.Errorf("rows %q, want %q", ids, want)
	}
	doc, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "fake-gcs-server behind toxiproxy") || !strings.Contains(string(doc), beginMark+"gcs -->") {
		t.Errorf("report lacks the link's shape or the gcs section:\n%s", doc)
	}
}

// TestChunkBlocksCutsAsTheAzureWriterPlans: S2b on Azure cuts each chunk
// into the blocks Berth's azure writer stages for a PATCH of that length.
func TestChunkBlocksCutsAsTheAzureWriterPlans(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		n    int64
		want []int64
	}{
		{16 * mib, []int64{4 * mib, 4 * mib, 4 * mib, 4 * mib}},
		{16*mib + 3, []int64{4*mib + 1, 4*mib + 1, 4*mib + 1, 4 * mib}},
		{10 * mib, []int64{5 * mib, 5 * mib}},
		{3 * mib, []int64{3 * mib}},
		{16, []int64{16}},
	} {
		if got := chunkBlocks(tc.n); !slices.Equal(got, tc.want) {
			t.Errorf("chunkBlocks(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}
