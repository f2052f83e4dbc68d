package e2e

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/berth-registry/berth/internal/testenv"
	"github.com/opencontainers/go-digest"
)

// twoOnOneStore is two Berth instances on one store, as two servers
// behind a load balancer, and what it takes to write to the store behind
// their back.
type twoOnOneStore struct {
	a, b    string // http://127.0.0.1:PORT
	config  string // the config both run, for garbage-collect and a third
	bound   time.Duration
	rewrite func(t *testing.T, key string, body []byte) // a file under the root
}

func startTwoOnOneStore(t *testing.T, backend string, withRedis bool) *twoOnOneStore {
	t.Helper()
	p := &twoOnOneStore{}
	var cfg string
	switch backend {
	case "filesystem":
		root := t.TempDir()
		cfg = filesystemConfig(root) + "  secret: shared-by-both-instances\n"
		p.rewrite = func(t *testing.T, key string, body []byte) {
			if err := os.WriteFile(filepath.Join(root, key), body, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	case "s3":
		m := testenv.StartMinIO(t)
		bucket := m.Bucket(t)
		cfg = s3Config(m, bucket)
		p.rewrite = func(t *testing.T, key string, body []byte) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := m.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg, p.config, p.bound = fleetConfig(t, cfg, withRedis)
	p.a = "http://" + testenv.StartBerth(t, cfg)
	p.b = "http://" + testenv.StartBerth(t, cfg)
	return p
}

// manifestPath is the API path of a manifest by digest.
func manifestPath(repo string, d digest.Digest) string {
	return "/v2/" + repo + "/manifests/" + d.String()
}

// wantManifest checks that base serves exactly the image's manifest at
// path: the bytes its digest names.
func wantManifest(t *testing.T, base, path string, im testImage) {
	t.Helper()
	res := do(t, http.MethodGet, base+path, nil, nil)
	expectStatus(t, res, http.StatusOK)
	if !bytes.Equal(res.body, im.manifest) {
		t.Fatalf("GET %s through %s served %q, want the %s bytes", path, base, res.body, im.digest)
	}
}

// TestManifestsFromMemoryFollowDeletesAcrossInstances runs two instances
// on one store, with and without a shared Redis, on a file system and on
// MinIO. Both serve manifests by digest, and so keep them in memory; then
// a DELETE through one and a garbage collection run from a third process
// make every instance answer 404 within the documented bound (at once
// with Redis, storage.StaleBound without). A manifest rewritten in the
// store after an instance checked it stays served correctly by that
// instance, and a new instance refuses the rewritten bytes.
func TestManifestsFromMemoryFollowDeletesAcrossInstances(t *testing.T) {
	for _, backend := range []string{"filesystem", "s3"} {
		for _, withRedis := range []bool{false, true} {
			name := backend + "/without-redis"
			if withRedis {
				name = backend + "/with-redis"
			}
			t.Run(name, func(t *testing.T) { testManifestsFromMemory(t, backend, withRedis) })
		}
	}
}

func testManifestsFromMemory(t *testing.T, backend string, withRedis bool) {
	p := startTwoOnOneStore(t, backend, withRedis)
	const repo = "cache/app"
	kept := newTestImage(t, "kept layer")
	doomed := newTestImage(t, "doomed layer")
	untagged := newTestImage(t, "untagged layer")
	expectStatus(t, kept.push(t, p.a, repo, "kept"), http.StatusCreated)
	expectStatus(t, doomed.push(t, p.a, repo, "doomed"), http.StatusCreated)
	expectStatus(t, untagged.push(t, p.a, repo, untagged.digest.String()), http.StatusCreated)
	for _, base := range []string{p.a, p.b} {
		for _, im := range []testImage{kept, doomed, untagged} {
			wantManifest(t, base, manifestPath(repo, im.digest), im)
		}
	}

	// A DELETE through B.
	expectStatus(t, do(t, http.MethodDelete, p.b+manifestPath(repo, doomed.digest), nil, nil), http.StatusAccepted)
	goneFromBoth(t, p, manifestPath(repo, doomed.digest))

	// A garbage collection from a third process deletes the untagged one.
	time.Sleep(1100 * time.Millisecond) // past the grace period
	out, err := exec.Command(testenv.BuildBerth(t), "garbage-collect", "--online", "--delete-untagged", p.config).CombinedOutput()
	if err != nil {
		t.Fatalf("garbage-collect: %v\n%s", err, out)
	}
	goneFromBoth(t, p, manifestPath(repo, untagged.digest))
	for _, base := range []string{p.a, p.b} {
		wantManifest(t, base, manifestPath(repo, kept.digest), kept)
		wantManifest(t, base, "/v2/"+repo+"/manifests/kept", kept)
	}

	// The stored bytes of the kept manifest are rewritten: still JSON,
	// same size, another layer digest. A and B checked the right bytes and
	// go on serving them; a new instance refuses the rewritten ones.
	bad := bytes.Replace(kept.manifest, []byte(kept.layer(0).String()), []byte(doomed.layer(0).String()), 1)
	hex := kept.digest.Encoded()
	p.rewrite(t, "docker/registry/v2/blobs/sha256/"+hex[:2]+"/"+hex+"/data", bad)
	for _, base := range []string{p.a, p.b} {
		wantManifest(t, base, manifestPath(repo, kept.digest), kept)
	}
	c := "http://" + testenv.StartBerth(t, mustRead(t, p.config))
	for _, path := range []string{manifestPath(repo, kept.digest), "/v2/" + repo + "/manifests/kept"} {
		for range 2 {
			res := do(t, http.MethodGet, c+path, nil, nil)
			if res.StatusCode != http.StatusInternalServerError || bytes.Contains(res.body, []byte(doomed.layer(0).String())) {
				t.Errorf("GET %s of rewritten bytes through a new instance: %d %q, want 500 without them", path, res.StatusCode, res.body)
			}
		}
	}
}

// goneFromBoth checks that path answers 404 through both instances once
// their bound has passed: none with Redis, StaleBound without.
func goneFromBoth(t *testing.T, p *twoOnOneStore, path string) {
	t.Helper()
	time.Sleep(p.bound)
	for _, base := range []string{p.a, p.b} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			if got := do(t, method, base+path, nil, nil).StatusCode; got != http.StatusNotFound {
				t.Errorf("%s %s through %s, %s after it was deleted: %d, want 404", method, path, base, p.bound, got)
			}
		}
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
