// Command bench measures Berth against CNCF Distribution side by side:
// both servers on loopback, the same config on the same disk (or each on
// a MinIO of its own with -backend s3), driven by the same Go load
// generator in alternating rounds. It prints one table of medians and
// ratios and writes it into docs/benchmarks.md.
//
//	go run ./bench                 # full run, about ten minutes
//	go run ./bench -quick          # every scenario, small, under a minute
//	go run ./bench -backend s3     # against MinIO
//	go run ./bench -backend azure  # against Azurite
//	go run ./bench -backend gcs    # against fake-gcs-server
//	go run ./bench -run '^(5|6)$' -profile /tmp/prof  # some scenarios, with Berth CPU profiles
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
)

// sizes scale the scenarios; quick mode shrinks them all.
type sizes struct {
	rounds     int
	big        int64 // scenarios 1, 2, 3, 9
	chunk      int64
	pulls      int // pulls of the big blob per measurement
	smallBlobs int
	load       time.Duration // per measurement of scenarios 5, 6, 7
	tags       int
	tagPage    int
	concurrent int
	layers     int
	layerSize  int64
	cloudTags  int // S5
	repos      int // S6
}

var (
	fullSizes = sizes{
		rounds: 3, big: 1 << 30, chunk: 16 << 20, pulls: 9, smallBlobs: 500,
		load: 5 * time.Second, tags: 10000, tagPage: 1000, concurrent: 8, layers: 20, layerSize: 1 << 20,
		cloudTags: 100000, repos: 10000,
	}
	quickSizes = sizes{
		rounds: 1, big: 64 << 20, chunk: 16 << 20, pulls: 1, smallBlobs: 100,
		load: time.Second, tags: 1000, tagPage: 100, concurrent: 8, layers: 3, layerSize: 64 << 10,
		// Enough for several pages of each; the quick run is make test's smoke
		// test, and every entry is seeded through the shaped link.
		cloudTags: 350, repos: 250,
	}
)

// harness holds what every scenario shares.
type harness struct {
	root, work string
	backend    string     // filesystem, s3, azure or gcs
	minio      string     // MinIO binary, for s3
	azurite    string     // azurite-blob, for azure
	fakeGCS    string     // fake-gcs-server binary, for gcs
	wan        *toxiproxy // shapes the link to each MinIO; nil when WAN=off
	sz         sizes
	specs      [2]serverSpec // Distribution first
	omitBuild  func() (string, error)
	omitBin    string // built by omitBuild when a scenario first needs it
	// catalogBuild is how long Berth took to build its catalog index of
	// S6's bucket (ms), once per run (awaitCatalogIndex).
	catalogBuild float64
	profileDir   string
	dockerSkip   string
	log          io.Writer
	devNull      *os.File // where big pulls are spliced to
	webhook      *webhook // the notification endpoint of scenario 11

	big             *bigBlob
	small           digest.Digest
	manifest        digest.Digest
	manifestPayload []byte
	smallOnce       sync.Once
	smallData       [][]byte

	mirror mirrorUpstream // scenario 11's upstream, started on first use
}

type options struct {
	quick      bool
	backend    string
	out        string
	rounds     int
	run        string
	profileDir string
	berth      string // a berth binary to use instead of building one
	wan        bool   // s3: MinIO behind the WAN shape
	tags       int    // S5's tag count instead of the mode's
}

func main() {
	var o options
	flag.BoolVar(&o.quick, "quick", false, "run every scenario small (under a minute); CI's smoke test")
	flag.StringVar(&o.backend, "backend", envOr("BACKEND", "filesystem"), "storage backend: filesystem, s3 (MinIO), azure (Azurite) or gcs (fake-gcs-server)")
	flag.StringVar(&o.out, "out", "", "markdown file to write the results into (default docs/benchmarks.md, none with -quick)")
	flag.IntVar(&o.rounds, "rounds", 0, "alternating rounds per scenario (default 3, 1 with -quick)")
	flag.StringVar(&o.run, "run", "", "run only the scenarios whose number matches this regular expression")
	flag.StringVar(&o.profileDir, "profile", "", "write CPU and allocation profiles of Berth's first measurement of each scenario here")
	flag.StringVar(&o.berth, "berth", "", "use this berth binary instead of building ./cmd/berth")
	flag.BoolVar(&o.wan, "wan", envOr("WAN", "on") != "off", "with -backend s3, azure or gcs, put each object store behind the WAN-shaped link (WAN=off in the environment: not)")
	flag.IntVar(&o.tags, "tags", 0, "tags listed in S5 (default 100000, 350 with -quick)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.out == "" && !o.quick && o.run == "" {
		o.out = "docs/benchmarks.md"
	}
	res, err := run(ctx, o, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	fmt.Print(res.table())
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// run builds Berth, runs the scenarios and writes the results to o.out
// (relative to the module root) when it is set.
func run(ctx context.Context, o options, log io.Writer) (*results, error) {
	h := &harness{backend: o.backend, sz: fullSizes, profileDir: o.profileDir, log: log}
	if o.quick {
		h.sz = quickSizes
	}
	if o.rounds > 0 {
		h.sz.rounds = o.rounds
	}
	if o.tags > 0 {
		h.sz.cloudTags = o.tags
	}
	if h.backend == "" {
		h.backend = "filesystem"
	}
	if h.backend != "filesystem" && h.backend != "s3" && h.backend != "azure" && h.backend != "gcs" {
		return nil, fmt.Errorf("unknown backend %q (filesystem, s3, azure or gcs)", h.backend)
	}
	var filter *regexp.Regexp
	if o.run != "" {
		var err error
		if filter, err = regexp.Compile(o.run); err != nil {
			return nil, fmt.Errorf("-run: %w", err)
		}
	}
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	h.root = root
	dist := filepath.Join(root, ".cache", "bin", "registry")
	if _, err := os.Stat(dist); err != nil {
		return nil, fmt.Errorf("CNCF Distribution not installed (run scripts/tools.sh registry): %w", err)
	}
	if h.backend == "s3" {
		h.minio = filepath.Join(root, ".cache", "bin", "minio")
		if _, err := os.Stat(h.minio); err != nil {
			return nil, fmt.Errorf("MinIO not installed (run scripts/tools.sh minio): %w", err)
		}
	}
	if h.backend == "azure" {
		h.azurite = filepath.Join(root, ".cache", "bin", "azurite-blob")
		if _, err := os.Stat(h.azurite); err != nil {
			return nil, fmt.Errorf("azurite-blob not installed (run scripts/tools.sh azurite-blob): %w", err)
		}
		h.sz = h.sz.onAzure(o.tags > 0)
	}
	if h.backend == "gcs" {
		h.fakeGCS = filepath.Join(root, ".cache", "bin", "fake-gcs-server")
		if _, err := os.Stat(h.fakeGCS); err != nil {
			return nil, fmt.Errorf("fake-gcs-server not installed (run scripts/tools.sh fake-gcs-server): %w", err)
		}
	}
	store := map[string]string{"s3": "MinIO", "azure": "Azurite", "gcs": "fake-gcs-server"}[h.backend]
	var toxiproxyBin string
	if store != "" && o.wan {
		toxiproxyBin = filepath.Join(root, ".cache", "bin", "toxiproxy-server")
		if _, err := os.Stat(toxiproxyBin); err != nil {
			return nil, fmt.Errorf("toxiproxy not installed (run scripts/tools.sh toxiproxy-server, or WAN=off): %w", err)
		}
	}
	// The work directory is on the repository's disk, not a /tmp that may
	// be in memory: both servers store there.
	cache := filepath.Join(root, ".cache", "bench")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	if h.work, err = os.MkdirTemp(cache, "run-"); err != nil {
		return nil, err
	}
	defer os.RemoveAll(h.work)
	defer h.stopMirrorUpstream()
	shape := ""
	if toxiproxyBin != "" {
		if h.wan, err = startToxiproxy(ctx, toxiproxyBin, h.work, defaultWAN); err != nil {
			return nil, err
		}
		defer h.wan.stop()
		shape = defaultWAN.of(store)
		fmt.Fprintf(log, "bench: %s\n", shape)
	} else if store != "" {
		shape = store + " on loopback, unshaped (WAN=off)"
	}

	berth := o.berth
	if berth == "" {
		fmt.Fprintf(log, "bench: building berth\n")
		if berth, err = buildBerth(ctx, root, h.work, "berth", ""); err != nil {
			return nil, err
		}
	}
	h.specs = [2]serverSpec{{name: "distribution", bin: dist}, {name: "berth", bin: berth}}
	if h.webhook, err = startWebhook(); err != nil {
		return nil, err
	}
	defer h.webhook.close()
	h.omitBuild = func() (string, error) {
		fmt.Fprintf(log, "bench: building berth without the cloud drivers\n")
		return buildBerth(ctx, root, h.work, "berth-omit", "berth_no_azure,berth_no_gcs,berth_no_s3,berth_no_swift")
	}
	h.dockerSkip = dockerCheck(ctx)
	fmt.Fprintf(log, "bench: writing a %s test blob\n", sizeText(h.sz.big))
	if h.big, err = newBigBlob(h.work, h.sz.big); err != nil {
		return nil, err
	}
	defer h.big.f.Close()
	if h.devNull, err = os.OpenFile(os.DevNull, os.O_WRONLY, 0); err != nil {
		return nil, err
	}
	defer h.devNull.Close()

	res := &results{backend: h.backend, shape: shape, sizes: h.sz, quick: o.quick, started: time.Now()}
	for i, sc := range h.scenarios() {
		if filter != nil && !filter.MatchString(sc.rows[0].id) {
			continue
		}
		if sc.skip != nil {
			if why := sc.skip(h); why != "" {
				fmt.Fprintf(log, "bench: scenario %s skipped: %s\n", sc.rows[0].id, why)
				for _, r := range sc.rows {
					res.rows = append(res.rows, result{row: r, skipped: why})
				}
				continue
			}
		}
		fmt.Fprintf(log, "bench: scenario %s: %s\n", sc.rows[0].id, sc.rows[0].name)
		vals, err := h.runScenario(ctx, i, sc)
		if err != nil {
			return nil, fmt.Errorf("scenario %s: %w", sc.rows[0].id, err)
		}
		for j, r := range sc.rows {
			res.rows = append(res.rows, result{row: r, dist: median(vals[0][j]), berth: median(vals[1][j])})
		}
	}
	res.elapsed = time.Since(res.started)
	if o.out != "" {
		out := o.out
		if !filepath.IsAbs(out) {
			out = filepath.Join(root, out)
		}
		if err := res.writeDoc(out); err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "bench: results written to %s\n", out)
	}
	return res, nil
}

// runScenario measures sc on both servers, alternating, and returns the
// values by server, row and round.
func (h *harness) runScenario(ctx context.Context, idx int, sc scenario) ([2][][]float64, error) {
	var vals [2][][]float64
	for s := range vals {
		vals[s] = make([][]float64, len(sc.rows))
	}
	// The shared storage root is ended after the servers on it.
	var shared *storageRoot
	if sc.shared {
		var err error
		if shared, err = h.newStorage(ctx); err != nil {
			return vals, err
		}
		defer shared.cleanup()
	}
	var servers [2]*server
	var clients [2]*client
	defer func() {
		for s := range servers {
			if servers[s] != nil {
				clients[s].close()
				servers[s].stop()
			}
		}
	}()
	specs := h.specs
	if sc.servers != nil {
		specs = sc.servers(h)
	}
	if sc.omit {
		if h.omitBin == "" {
			bin, err := h.omitBuild()
			if err != nil {
				return vals, err
			}
			h.omitBin = bin
		}
		specs[1].bin = h.omitBin
	}
	start := func(s int) error {
		extra := ""
		if sc.extra != nil {
			var err error
			if extra, err = sc.extra(ctx, h); err != nil {
				return err
			}
		}
		srv, err := h.startServer(ctx, specs[s], h.debugAddr(s), sc.redis, extra, shared)
		if err != nil {
			return err
		}
		servers[s], clients[s] = srv, newClient(srv.base(), 64)
		if sc.setup != nil && (shared == nil || s == 0) {
			if err := sc.setup(ctx, h, srv, clients[s]); err != nil {
				return fmt.Errorf("%s setup: %w", srv.name, err)
			}
		}
		return nil
	}
	stopOne := func(s int) {
		clients[s].close()
		servers[s].stop()
		servers[s] = nil
	}
	if !sc.fresh {
		for s := range servers {
			if err := start(s); err != nil {
				return vals, err
			}
		}
	}
	// A run of fewer rounds than the default (-quick, -rounds 1) is a
	// quick look, and gets what it asked for.
	rounds := h.sz.rounds
	if rounds >= fullSizes.rounds {
		rounds = max(rounds, sc.rounds)
	}
	for round := range rounds {
		for s := range servers {
			if sc.fresh {
				if err := start(s); err != nil {
					return vals, err
				}
			}
			prof := h.startProfile(ctx, idx, round, s, servers[s])
			v, err := sc.measure(ctx, h, servers[s], clients[s])
			prof()
			if err != nil {
				return vals, fmt.Errorf("%s: %w\n%s", servers[s].name, err, tail(filepath.Join(servers[s].dir, "server.log")))
			}
			fmt.Fprintf(h.log, "bench:   round %d %-12s %s\n", round+1, servers[s].name, formatVals(sc.rows, v))
			for j := range v {
				vals[s][j] = append(vals[s][j], v[j])
			}
			if sc.fresh {
				stopOne(s)
			}
		}
	}
	return vals, nil
}

func formatVals(rows []row, v []float64) string {
	s := ""
	for j, r := range rows {
		// Seconds of CPU (row 10b: 0.18) need more places than MB/s.
		prec := 1
		if math.Abs(v[j]) < 10 {
			prec = 3
		}
		s += fmt.Sprintf("%10.*f %s  ", prec, v[j], r.unit)
	}
	return s
}
