package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/storage"
)

// fleet is three Berth instances on one MinIO bucket behind haproxy
// round-robin, with or without one Redis they share.
type fleet struct {
	instances []string // http://127.0.0.1:PORT each
	front     string   // http://haproxy
	config    string   // the config file every instance runs
	// bound is how long after a DELETE is answered every instance may
	// still serve what it deleted: none with Redis, StaleBound without.
	bound time.Duration
}

func startFleet(t *testing.T, withRedis bool) *fleet {
	t.Helper()
	m := testenv.StartMinIO(t)
	f := &fleet{}
	var cfg string
	cfg, f.config, f.bound = fleetConfig(t, s3Config(m, m.Bucket(t)), withRedis)
	var hosts []string
	for range 3 {
		addr := testenv.StartBerth(t, cfg)
		hosts = append(hosts, addr)
		f.instances = append(f.instances, "http://"+addr)
	}
	f.front = "http://" + testenv.StartHAProxy(t, hosts...)
	return f
}

// fleetConfig readies cfg for instances that share one store: garbage
// collection's grace period is 1s, and with withRedis the blob descriptor
// cache is one Redis they share. It returns the config, the file it is
// written to (for garbage-collect) and how long after a DELETE an
// instance may still serve what it deleted: none with Redis, StaleBound
// without.
func fleetConfig(t *testing.T, cfg string, withRedis bool) (text, file string, bound time.Duration) {
	t.Helper()
	cfg = strings.Replace(cfg, "  delete:\n", "  gc:\n    graceperiod: 1s\n  delete:\n", 1)
	bound = storage.StaleBound
	if withRedis {
		r := testenv.StartRedis(t)
		cfg = strings.Replace(cfg, "  delete:\n", "  cache:\n    blobdescriptor: redis\n  delete:\n", 1)
		cfg += fmt.Sprintf("redis:\n  addrs: [%s]\n", r.Addr)
		bound = 0
	}
	file = filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, file, bound
}

// everywhere is every instance and the front.
func (f *fleet) everywhere() []string { return append([]string{f.front}, f.instances...) }

// gone checks that path answers 404 through every instance once the
// fleet's bound has passed.
func (f *fleet) gone(t *testing.T, path string) {
	t.Helper()
	time.Sleep(f.bound)
	for _, base := range f.everywhere() {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			if got := do(t, method, base+path, nil, nil).StatusCode; got != http.StatusNotFound {
				t.Errorf("%s %s through %s, %s after it was deleted: %d, want 404", method, path, base, f.bound, got)
			}
		}
	}
}

// TestFleetBehindRoundRobin runs what an operator's fleet sees: three
// instances on one bucket behind haproxy. Push through one, pull through
// another, delete through a third, push a deleted layer again at once,
// and collect garbage online from one while pushes go through the front.
// Every acknowledged push validates through every instance, and nothing
// deleted is served after the bound: at once with Redis, StaleBound
// without.
func TestFleetBehindRoundRobin(t *testing.T) {
	for _, withRedis := range []bool{true, false} {
		name := "without-redis"
		if withRedis {
			name = "with-redis"
		}
		t.Run(name, func(t *testing.T) { testFleet(t, withRedis) })
	}
}

func testFleet(t *testing.T, withRedis bool) {
	crane := testenv.Tool(t, "crane")
	f := startFleet(t, withRedis)
	a, b, c := f.instances[0], f.instances[1], f.instances[2]
	const repo = "fleet/app"

	// Push through A, pull through B (and everything else).
	im := newTestImage(t, "fleet layer one", "fleet layer two")
	expectStatus(t, im.push(t, a, repo, "1.0"), http.StatusCreated)
	expectStatus(t, do(t, http.MethodGet, b+"/v2/"+repo+"/manifests/1.0", nil, nil), http.StatusOK)
	validate(t, crane, repo, im.digest, f.everywhere()...)

	// Delete a layer through C; push the image again through A at once.
	// Without Redis, A may still say the layer exists and then refuse the
	// manifest; with Redis it knows. Either way no broken image is
	// acknowledged, and after the bound the push goes through.
	layer := "/v2/" + repo + "/blobs/" + im.layer(1).String()
	expectStatus(t, do(t, http.MethodDelete, c+layer, nil, nil), http.StatusAccepted)
	res := im.push(t, a, repo, "1.0")
	switch {
	case res.StatusCode == http.StatusCreated:
		validate(t, crane, repo, im.digest, f.everywhere()...)
	case withRedis:
		t.Fatalf("re-push through A with Redis: %d %s", res.StatusCode, res.body)
	default:
		t.Logf("re-push at once refused without Redis: %d", res.StatusCode)
		time.Sleep(f.bound)
		expectStatus(t, im.push(t, a, repo, "1.0"), http.StatusCreated)
		validate(t, crane, repo, im.digest, f.everywhere()...)
	}

	// Delete a manifest through C that A and B just served.
	doomed := newTestImage(t, "doomed layer")
	expectStatus(t, doomed.push(t, f.front, repo, "doomed"), http.StatusCreated)
	manifest := "/v2/" + repo + "/manifests/" + doomed.digest.String()
	for _, base := range []string{a, b} {
		expectStatus(t, do(t, http.MethodGet, base+manifest, nil, nil), http.StatusOK)
	}
	expectStatus(t, do(t, http.MethodDelete, c+manifest, nil, nil), http.StatusAccepted)
	f.gone(t, manifest)

	// Collect garbage online through A's config while pushes go through
	// the front; the doomed image's layer is collected.
	time.Sleep(1100 * time.Millisecond) // past the grace period
	var (
		mu       sync.Mutex
		acked    []testImage
		stop     = make(chan struct{})
		pushing  sync.WaitGroup
		gcOutput []byte
	)
	for w := range 2 {
		pushing.Add(1)
		go func() {
			defer pushing.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := newTestImage(t, fmt.Sprintf("during gc %d/%d", w, i), "fleet layer one")
				res, err := p.tryPush(f.front, repo, fmt.Sprintf("gc-%d-%d", w, i))
				if err == nil && res.StatusCode == http.StatusCreated {
					mu.Lock()
					acked = append(acked, p)
					mu.Unlock()
				}
			}
		}()
	}
	// Two instances' cron jobs start a collection at once: the lease
	// lets exactly one run.
	outs := make([][]byte, 2)
	errs := make([]error, 2)
	var gcs sync.WaitGroup
	for i := range outs {
		gcs.Add(1)
		go func() {
			defer gcs.Done()
			outs[i], errs[i] = exec.Command(testenv.BuildBerth(t), "garbage-collect", "--online", f.config).CombinedOutput()
		}()
	}
	gcs.Wait()
	close(stop)
	pushing.Wait()
	var ran int
	for i := range outs {
		switch {
		case errs[i] == nil:
			ran++
			gcOutput = outs[i]
		case !strings.Contains(string(outs[i]), "another garbage collection is running"):
			t.Errorf("garbage-collect --online: %v\n%s", errs[i], outs[i])
		}
	}
	if ran != 1 {
		t.Fatalf("%d of two simultaneous collections ran, want exactly one:\n%s\n%s", ran, outs[0], outs[1])
	}
	if !strings.Contains(string(gcOutput), doomed.layer(0).String()) {
		t.Errorf("the collection did not delete the doomed layer %s:\n%s", doomed.layer(0), gcOutput)
	}
	f.gone(t, "/v2/"+repo+"/blobs/"+doomed.layer(0).String())
	if len(acked) == 0 {
		t.Error("no push was acknowledged during the collection")
	}
	for _, p := range append(acked, im) {
		validate(t, crane, repo, p.digest, f.everywhere()...)
	}
	t.Logf("%d pushes acknowledged during the collection, all valid through every instance", len(acked))
}
