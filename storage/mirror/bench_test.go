package mirror_test

import (
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/storage/mirror"
	"github.com/opencontainers/go-digest"
)

// BenchmarkColdPull pulls a 20 × 1 MiB-layer image through an empty
// mirror, four blobs at a time, as bench row 12 does, for profiling the
// fill path in-process.
func BenchmarkColdPull(b *testing.B) {
	up := testenv.StartDistribution(b, "", "", "")
	uc := client{base: "http://" + up.Addr}
	var layers [][]byte
	for range 20 {
		layers = append(layers, randomBytes(1<<20))
	}
	img := uc.push(b, "bench/app", "v1", layers...)
	blobs := append([]digest.Digest{img.config}, img.layers...)
	b.Run("upstream", func(b *testing.B) {
		for b.Loop() {
			pull(b, uc, blobs)
		}
	})
	b.Run("mirror", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			mr := startMirror(b, "", mirror.Upstream{RemoteURL: "http://" + up.Addr})
			b.StartTimer()
			pull(b, mr.client, blobs)
			b.StopTimer()
			mr.m.Wait()
			b.StartTimer()
		}
	})
}

// pull gets the manifest, then the blobs four at a time.
func pull(b *testing.B, c client, blobs []digest.Digest) {
	if status, _, _ := c.get(b, "/v2/bench/app/manifests/v1"); status != http.StatusOK {
		b.Fatalf("manifest: %d", status)
	}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, d := range blobs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			resp := c.do(b, http.MethodGet, "/v2/bench/app/blobs/"+d.String(), nil, nil)
			defer resp.Body.Close()
			if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
				b.Errorf("blob %s: %d %v", d, resp.StatusCode, err)
			}
		})
	}
	wg.Wait()
}
