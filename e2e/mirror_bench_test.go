package e2e

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/opencontainers/go-digest"
)

// TestMirrorBench measures the pull-through cache, Berth against
// Distribution's proxy, the same upstream and the same config, servers
// alternating round by round: a cold pull of a 20-layer image (crane pull,
// 1 MiB per layer), the warm pull after it, and the bytes the upstream
// sends for 16 concurrent cold pulls of one 64 MiB blob. It runs only with
// BERTH_MIRROR_BENCH=1 (docs/benchmarks.md).
func TestMirrorBench(t *testing.T) {
	if os.Getenv("BERTH_MIRROR_BENCH") == "" {
		t.Skip("set BERTH_MIRROR_BENCH=1 to run the mirror benchmark")
	}
	crane := testenv.Tool(t, "crane")
	registryBin := testenv.Tool(t, "registry")
	berth := testenv.BuildBerth(t)
	t.Setenv("HOME", t.TempDir())
	up := testenv.StartDistribution(t, "", "", "")
	dir := t.TempDir()
	var layers []string
	for i := range 20 {
		p := filepath.Join(dir, fmt.Sprintf("l%d.tar", i))
		b := make([]byte, 1<<20)
		_, _ = rand.Read(b)
		writeTar(t, p, "f", string(b))
		layers = append(layers, "-f", p)
	}
	testenv.Run(t, crane, append(append([]string{"append", "--insecure"}, layers...), "-t", up.Addr+"/bench/img:1")...)
	big := make([]byte, 64<<20)
	_, _ = rand.Read(big)
	bigD := digest.FromBytes(big)
	res := do(t, http.MethodPost, "http://"+up.Addr+"/v2/bench/big/blobs/uploads/", nil, nil)
	expectStatus(t, res, http.StatusAccepted)
	expectStatus(t, do(t, http.MethodPut, "http://"+up.Addr+uploadPath(t, res)+"&digest="+bigD.String(), big, nil), http.StatusCreated)

	proxyCfg := func(root string) string {
		return filesystemConfig(root) + "proxy:\n  remoteurl: http://" + up.Addr + "\n"
	}
	start := map[string]func(t *testing.T) string{
		"distribution": func(t *testing.T) string {
			root := t.TempDir()
			cfg := filepath.Join(t.TempDir(), "config.yml")
			if err := os.WriteFile(cfg, []byte(proxyCfg(root)), 0o644); err != nil {
				t.Fatal(err)
			}
			addr := testenv.FreeAddr(t)
			p := testenv.StartProcess(t, registryBin, []string{"serve", cfg}, []string{"REGISTRY_HTTP_ADDR=" + addr})
			p.WaitHTTP(t, "http://"+addr+"/v2/", 30*time.Second)
			return addr
		},
		"berth": func(t *testing.T) string {
			_ = berth
			return testenv.StartBerth(t, proxyCfg(t.TempDir()))
		},
	}
	type sample struct{ cold, warm, upBytes []float64 }
	got := map[string]*sample{"distribution": {}, "berth": {}}
	const rounds = 5
	for round := range rounds {
		for _, name := range []string{"distribution", "berth"} {
			t.Run(fmt.Sprintf("%s-%d", name, round), func(t *testing.T) {
				addr := start[name](t)
				out := filepath.Join(t.TempDir(), "img.tar")
				pull := func() float64 {
					begin := time.Now()
					testenv.Run(t, crane, "pull", "--insecure", addr+"/bench/img:1", out)
					return time.Since(begin).Seconds()
				}
				got[name].cold = append(got[name].cold, pull())
				got[name].warm = append(got[name].warm, pull())

				before := up.BytesServed(http.MethodGet, "/v2/bench/big/blobs/"+bigD.String())
				var wg sync.WaitGroup
				for range 16 {
					wg.Go(func() {
						resp, err := http.Get("http://" + addr + "/v2/bench/big/blobs/" + bigD.String())
						if err != nil {
							t.Error(err)
							return
						}
						n, _ := io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK || n != int64(len(big)) {
							t.Errorf("%s: %s, %d bytes", name, resp.Status, n)
						}
					})
				}
				wg.Wait()
				// The upstream logs a response once it is sent.
				var after int64
				for range 50 {
					if after = up.BytesServed(http.MethodGet, "/v2/bench/big/blobs/"+bigD.String()); after > before {
						time.Sleep(200 * time.Millisecond)
						after = up.BytesServed(http.MethodGet, "/v2/bench/big/blobs/"+bigD.String())
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				got[name].upBytes = append(got[name].upBytes, float64(after-before)/(1<<20))
			})
		}
	}
	med := func(v []float64) float64 {
		s := slices.Clone(v)
		slices.Sort(s)
		return s[len(s)/2]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| row | Distribution proxy | Berth mirror | ratio |\n|---|---:|---:|---:|\n")
	d, m := got["distribution"], got["berth"]
	fmt.Fprintf(&b, "| cold pull, 20 × 1 MiB layers (s) | %.3f | %.3f | %.2f× faster |\n", med(d.cold), med(m.cold), med(d.cold)/med(m.cold))
	fmt.Fprintf(&b, "| warm pull (s) | %.3f | %.3f | %.2f× faster |\n", med(d.warm), med(m.warm), med(d.warm)/med(m.warm))
	fmt.Fprintf(&b, "| upstream MiB for 16 concurrent cold pulls of 64 MiB | %.0f | %.0f | %.2f× less |\n", med(d.upBytes), med(m.upBytes), med(d.upBytes)/med(m.upBytes))
	t.Logf("medians of %d rounds:\n%s\nraw: distribution %+v\nberth %+v", rounds, b.String(), *d, *m)
}
