package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/storage"
)

// TestDeleteOnOneInstanceReachesTheOthers deletes through instance B what
// instance A has just served (a manifest by digest, a layer), and checks
// that A answers 404 for it once the documented bound has passed.
func TestDeleteOnOneInstanceReachesTheOthers(t *testing.T) {
	m := testenv.StartMinIO(t)
	cfg := s3Config(m, m.Bucket(t))
	a := "http://" + testenv.StartBerth(t, cfg)
	b := "http://" + testenv.StartBerth(t, cfg)

	im := newTestImage(t, "stale-layer-one", "stale-layer-two")
	res := im.push(t, a, "fleet/app", "1.0")
	expectStatus(t, res, http.StatusCreated)
	manifest := "/v2/fleet/app/manifests/" + im.digest.String()
	layer := "/v2/fleet/app/blobs/" + im.layer(0).String()
	// A serves both, and so caches both.
	expectStatus(t, do(t, http.MethodGet, a+manifest, nil, nil), http.StatusOK)
	expectStatus(t, do(t, http.MethodHead, a+layer, nil, nil), http.StatusOK)

	expectStatus(t, do(t, http.MethodDelete, b+manifest, nil, nil), http.StatusAccepted)
	expectStatus(t, do(t, http.MethodDelete, b+layer, nil, nil), http.StatusAccepted)
	time.Sleep(storage.StaleBound)
	for _, p := range []string{manifest, layer} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			if got := do(t, method, a+p, nil, nil).StatusCode; got != http.StatusNotFound {
				t.Errorf("%s %s on A, %s after B deleted it: %d, want 404", method, p, storage.StaleBound, got)
			}
		}
	}
}

// TestRepushOfALayerDeletedOnAnotherInstance deletes a layer through B
// and pushes the image again through A at once, as a client would after a
// cleanup: A must not answer "already exists" from what it cached and then
// acknowledge a manifest whose layer is gone. Either the push is refused,
// or it validates through both instances. Once the bound has passed, the
// push is acknowledged and validates.
func TestRepushOfALayerDeletedOnAnotherInstance(t *testing.T) {
	crane := testenv.Tool(t, "crane")
	m := testenv.StartMinIO(t)
	cfg := s3Config(m, m.Bucket(t))
	a := "http://" + testenv.StartBerth(t, cfg)
	b := "http://" + testenv.StartBerth(t, cfg)

	im := newTestImage(t, "repush-layer-one", "repush-layer-two")
	expectStatus(t, im.push(t, a, "fleet/app", "1.0"), http.StatusCreated)
	expectStatus(t, do(t, http.MethodDelete, b+"/v2/fleet/app/blobs/"+im.layer(1).String(), nil, nil), http.StatusAccepted)

	res := im.push(t, a, "fleet/app", "1.0")
	switch res.StatusCode {
	case http.StatusCreated:
		validate(t, crane, "fleet/app", im.digest, a, b)
	case http.StatusBadRequest, http.StatusNotFound: // MANIFEST_BLOB_UNKNOWN
		t.Logf("the push at once was refused: %s", res.body)
	default:
		t.Fatalf("push at once: status %d: %s", res.StatusCode, res.body)
	}

	time.Sleep(storage.StaleBound)
	expectStatus(t, im.push(t, a, "fleet/app", "1.0"), http.StatusCreated)
	validate(t, crane, "fleet/app", im.digest, a, b)
}
