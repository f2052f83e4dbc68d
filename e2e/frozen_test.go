package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/opencontainers/go-digest"
)

// frozenTimeouts bounds every backend call at two seconds, so a frozen
// backend is noticed quickly.
const frozenTimeouts = `berth:
  storage:
    timeouts:
      metadata: 2s
      read: 2s
      write: 2s
      commit: 2s
`

// patientClient waits ten times the configured deadlines, a margin for
// a request that makes several backend calls: a request it gives up on
// is one Berth never answered. It gives up before the 30 s default
// deadline, so the test also shows that the configured ones apply.
var patientClient = &http.Client{Timeout: 20 * time.Second}

// TestFrozenBackendAnswers503 freezes MinIO with SIGSTOP (the process
// stops; its connections stay open, so nothing fails fast) under a running
// Berth: every request that needs the backend is answered 503 UNAVAILABLE,
// a blob GET never starts a 200 it cannot finish, and after SIGCONT the
// same requests succeed without a restart.
func TestFrozenBackendAnswers503(t *testing.T) {
	m := testenv.StartMinIO(t)
	cfg := s3Config(m, m.Bucket(t)) + frozenTimeouts
	pusher := "http://" + testenv.StartBerth(t, cfg)

	layer := make([]byte, 300<<10)
	if _, err := rand.Read(layer); err != nil {
		t.Fatal(err)
	}
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	const repo = "/v2/frozen/app"
	layerD, configD := pushBlob(t, pusher, repo, layer), pushBlob(t, pusher, repo, config)
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`,
		configD, len(config), layerD, len(layer))
	res := do(t, http.MethodPut, pusher+repo+"/manifests/v1", []byte(manifest),
		map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
	expectStatus(t, res, http.StatusCreated)

	// A fresh instance has nothing of the image cached but what this test
	// warms: the layer's descriptor, so that its GET below reaches the
	// backend only to read the bytes, after the checks that used to send
	// the 200.
	b := "http://" + testenv.StartBerth(t, cfg)
	expectStatus(t, do(t, http.MethodHead, b+repo+"/blobs/"+layerD.String(), nil, nil), http.StatusOK)
	session := uploadPath(t, do(t, http.MethodPost, b+repo+"/blobs/uploads/", nil, nil))

	requests := []struct {
		name, method, path string
		body               []byte
		hdr                map[string]string
	}{
		{name: "GET a blob whose descriptor is cached", method: http.MethodGet, path: repo + "/blobs/" + layerD.String()},
		{name: "GET a range of it", method: http.MethodGet, path: repo + "/blobs/" + layerD.String(), hdr: map[string]string{"Range": "bytes=1000-"}},
		{name: "GET an uncached blob", method: http.MethodGet, path: repo + "/blobs/" + configD.String()},
		{name: "HEAD an uncached blob", method: http.MethodHead, path: repo + "/blobs/" + configD.String()},
		{name: "GET a manifest by tag", method: http.MethodGet, path: repo + "/manifests/v1",
			hdr: map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}},
		{name: "GET the tag list", method: http.MethodGet, path: repo + "/tags/list"},
		{name: "GET the catalog", method: http.MethodGet, path: "/v2/_catalog"},
		{name: "POST an upload", method: http.MethodPost, path: repo + "/blobs/uploads/"},
		{name: "PATCH an upload started before", method: http.MethodPatch, path: session, body: layer[:1000],
			hdr: map[string]string{"Content-Type": "application/octet-stream", "Content-Range": "0-999"}},
	}
	send := func(method, path string, body []byte, hdr map[string]string) (*http.Response, []byte, error) {
		req, err := http.NewRequest(method, b+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := patientClient.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer res.Body.Close()
		got, err := io.ReadAll(res.Body)
		return res, got, err
	}

	pid := m.Process.Cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(thaw)

	for _, rq := range requests {
		t.Run("frozen/"+rq.name, func(t *testing.T) {
			res, body, err := send(rq.method, rq.path, rq.body, rq.hdr)
			if err != nil {
				// A 200 cut short shows here too, as a body read error.
				t.Fatalf("no complete answer: %v (status %v)", err, statusOf(res))
			}
			if res.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503; body %.200s", res.StatusCode, body)
			}
			if rq.method == http.MethodHead {
				return
			}
			var e struct {
				Errors []struct{ Code string } `json:"errors"`
			}
			if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) != 1 || e.Errors[0].Code != "UNAVAILABLE" {
				t.Fatalf("body %s, want one UNAVAILABLE error", body)
			}
		})
	}

	thaw()
	for _, rq := range requests {
		t.Run("thawed/"+rq.name, func(t *testing.T) {
			if rq.method == http.MethodPatch {
				// The session may have been left behind by the failed PATCH;
				// a new one shows uploads work again.
				rq.path = uploadPath(t, do(t, http.MethodPost, b+repo+"/blobs/uploads/", nil, nil))
			}
			res, body, err := send(rq.method, rq.path, rq.body, rq.hdr)
			if err != nil {
				t.Fatalf("no complete answer: %v", err)
			}
			if res.StatusCode >= 300 {
				t.Fatalf("status %d after SIGCONT; body %.300s", res.StatusCode, body)
			}
			if rq.method == http.MethodGet && rq.path == repo+"/blobs/"+layerD.String() {
				want := layer
				if rq.hdr["Range"] != "" {
					want = layer[1000:]
				}
				if !bytes.Equal(body, want) {
					t.Fatalf("got %d bytes, want %d of the layer", len(body), len(want))
				}
			}
		})
	}
}

func statusOf(res *http.Response) any {
	if res == nil {
		return "none"
	}
	return res.StatusCode
}

// pushBlob uploads content monolithically to repo (a /v2/<name> path) and
// returns its digest.
func pushBlob(t *testing.T, base, repo string, content []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(content)
	res := do(t, http.MethodPost, base+repo+"/blobs/uploads/?digest="+d.String(), content,
		map[string]string{"Content-Type": "application/octet-stream"})
	expectStatus(t, res, http.StatusCreated)
	return d
}
