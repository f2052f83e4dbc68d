package registry

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// distributionState signs a _state as CNCF Distribution does (its
// handlers' hmac.go): padded URL-safe base64 of HMAC-SHA256(secret, body)
// followed by body, the JSON of Name, UUID, Offset and StartedAt.
func distributionState(secret, name, id string, offset int64) string {
	body, _ := json.Marshal(map[string]any{"Name": name, "UUID": id, "Offset": offset, "StartedAt": time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)})
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return base64.URLEncoding.EncodeToString(append(m.Sum(nil), body...))
}

// TestUploadStateOfDistributionIsAccepted: a Distribution instance behind
// the same load balancer, with the same http.secret, hands out upload URLs
// Berth continues; a state signed with another secret, or for another
// repository or session, is refused.
func TestUploadStateOfDistributionIsAccepted(t *testing.T) {
	const secret = "fleet-secret"
	s := newServer(t, &setup{opts: Options{Secret: secret}})
	res := s.postUpload("repo")
	id := res.header.Get("Docker-Upload-UUID")
	path := "/v2/repo/blobs/uploads/" + id + "?_state="
	tests := []struct {
		name, state string
		status      int
	}{
		{"another secret", distributionState("other", "repo", id, 0), http.StatusBadRequest},
		{"another repository", distributionState(secret, "other", id, 0), http.StatusBadRequest},
		{"another session", distributionState(secret, "repo", "0b9f8e3a-6c1d-4f2e-9a7b-5c4d3e2f1a0b", 0), http.StatusBadRequest},
		{"tampered", distributionState(secret, "repo", id, 0)[:50] + "AAAA" + distributionState(secret, "repo", id, 0)[54:], http.StatusBadRequest},
		{"signed by distribution", distributionState(secret, "repo", id, 0), http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := Code("")
			if tt.status == http.StatusBadRequest {
				code = CodeBlobUploadInvalid
			}
			s.do("PATCH", path+url.QueryEscape(tt.state), []byte("x"), "Content-Type", "application/octet-stream").expect(t, tt.status, code)
		})
	}
}

// TestUploadLocationSignsAsDistribution: the state Berth signs in
// Distribution's form carries the fields Distribution reads, under the
// names it reads them, and verifies with the shared secret.
func TestUploadLocationSignsAsDistribution(t *testing.T) {
	a := &api{opts: Options{Secret: "fleet-secret", RelativeURLs: true}}
	started := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	loc := a.uploadLocation(httptest.NewRequest("PATCH", "/", nil), "team/app", "id-1", 12345, started)
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	if u.Path != "/v2/team/app/blobs/uploads/id-1" {
		t.Fatalf("path %q", u.Path)
	}
	raw, err := base64.URLEncoding.DecodeString(u.Query().Get("_state"))
	if err != nil || len(raw) <= sha256.Size {
		t.Fatalf("_state is not padded URL-safe base64 of a MAC and a body: %v", err)
	}
	m := hmac.New(sha256.New, []byte("fleet-secret"))
	m.Write(raw[sha256.Size:])
	if !hmac.Equal(m.Sum(nil), raw[:sha256.Size]) {
		t.Fatal("MAC does not verify with the secret")
	}
	want := `{"Name":"team/app","UUID":"id-1","Offset":12345,"StartedAt":"2026-12-06T12:00:00Z"}`
	if got := string(raw[sha256.Size:]); got != want {
		t.Fatalf("state body\n got %s\nwant %s", got, want)
	}
}

// TestStaleUploadURLIsRefusedAsDistributionRefusesIt: an upload URL signed
// for another offset than the upload holds (a client retrying with an old
// Location) is refused with 416 RANGE_INVALID, as CNCF Distribution
// refuses it, with the Location and Range of where the upload stands; the
// upload is left as it was and goes on from that Location. URLs Berth
// signed before it took up Distribution's form, which carry no offset,
// still work.
func TestStaleUploadURLIsRefusedAsDistributionRefusesIt(t *testing.T) {
	const secret = "fleet-secret"
	s := newServer(t, &setup{opts: Options{Secret: secret}})
	res := s.postUpload("repo")
	first := res.header.Get("Location")
	id := res.header.Get("Docker-Upload-UUID")
	res = s.do("PATCH", first, []byte("hello"), "Content-Type", "application/octet-stream")
	res.expect(t, http.StatusAccepted, "")
	current := res.header.Get("Location")

	stale := []struct{ method, path string }{
		{"PATCH", first},
		{"PUT", first + "&digest=" + digest.FromString("hello").String()},
		{"DELETE", first},
		{"PATCH", "/v2/repo/blobs/uploads/" + id + "?_state=" + url.QueryEscape(distributionState(secret, "repo", id, 6))},
	}
	for _, tt := range stale {
		t.Run(tt.method+" at a stale offset", func(t *testing.T) {
			res := s.do(tt.method, tt.path, []byte("world"), "Content-Type", "application/octet-stream")
			res.expect(t, http.StatusRequestedRangeNotSatisfiable, CodeRangeInvalid)
			if got := res.header.Get("Range"); got != "0-4" {
				t.Errorf("Range %q, want 0-4", got)
			}
			if got := res.header.Get("Location"); got != current {
				t.Errorf("Location %q, want the current one %q", got, current)
			}
		})
	}
	t.Run("legacy URL without an offset", func(t *testing.T) {
		a := &api{opts: Options{Secret: secret}}
		legacy := "/v2/repo/blobs/uploads/" + id + "?_state=" + a.legacyUploadState("repo", id)
		s.do("GET", legacy, nil).expect(t, http.StatusNoContent, "")
		s.do("PATCH", legacy, []byte(" world"), "Content-Type", "application/octet-stream", "Content-Range", "5-10").expect(t, http.StatusAccepted, "")
	})
	res = s.do("GET", current, nil)
	res.expect(t, http.StatusNoContent, "")
	if got := res.header.Get("Range"); got != "0-10" {
		t.Fatalf("Range %q after the stale requests, want 0-10", got)
	}
	s.do("PUT", res.header.Get("Location")+"&digest="+digest.FromString("hello world").String(), nil).expect(t, http.StatusCreated, "")
}
