package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
	_ "github.com/berth-registry/berth/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"
)

const (
	mtManifest = "application/vnd.oci.image.manifest.v1+json"
	mtConfig   = "application/vnd.oci.image.config.v1+json"
	mtLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

type testServer struct {
	t   *testing.T
	srv *httptest.Server
	h   http.Handler
	reg *storage.Registry
}

// setup is what a test changes from the default server.
type setup struct {
	opts    Options
	storage storage.Options
	wrap    func(driver.Driver) driver.Driver // wraps the inmemory driver
	log     *slog.Logger
}

// newServer starts the API over storage on the inmemory driver, with
// deletes enabled unless the test says otherwise through s.
func newServer(t *testing.T, s *setup) *testServer {
	t.Helper()
	if s == nil {
		s = &setup{storage: storage.Options{DeleteEnabled: true}}
	}
	d, err := driver.Open(context.Background(), "inmemory", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.wrap != nil {
		d = s.wrap(d)
	}
	log := s.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := storage.New(d, s.storage, log)
	h := New(reg, s.opts, log)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testServer{t: t, srv: srv, h: h, reg: reg}
}

// result is a response with its body read.
type result struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request; hdr is pairs of header names and values. A path
// that is an absolute URL (a Location) is used as it is.
func (s *testServer) do(method, path string, body []byte, hdr ...string) result {
	s.t.Helper()
	u := path
	if !strings.HasPrefix(path, "http://") {
		u = s.srv.URL + path
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: b}
}

// expect fails the test unless the response has status and, when code is
// not empty, an OCI error body with that code.
func (res result) expect(t *testing.T, status int, code Code) {
	t.Helper()
	if res.status != status {
		t.Fatalf("status %d, want %d; body %s", res.status, status, res.body)
	}
	if code == "" {
		return
	}
	var eb errorBody
	if err := json.Unmarshal(res.body, &eb); err != nil {
		t.Fatalf("error body %q: %v", res.body, err)
	}
	if len(eb.Errors) == 0 || eb.Errors[0].Code != code {
		t.Fatalf("error body %s, want code %s", res.body, code)
	}
}

// expectHeader fails the test unless header k is v.
func (res result) expectHeader(t *testing.T, k, v string) {
	t.Helper()
	if got := res.header.Get(k); got != v {
		t.Fatalf("header %s = %q, want %q", k, got, v)
	}
}

// pushBlob uploads content to repo with a single POST.
func (s *testServer) pushBlob(repo string, content []byte) digest.Digest {
	s.t.Helper()
	d := digest.FromBytes(content)
	s.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), content).expect(s.t, http.StatusCreated, "")
	return d
}

// postUpload starts an upload session in repo with an empty POST and
// returns the 202 that answers it.
func (s *testServer) postUpload(repo string) result {
	s.t.Helper()
	res := s.do("POST", "/v2/"+repo+"/blobs/uploads/", nil)
	res.expect(s.t, http.StatusAccepted, "")
	return res
}

type descriptorJSON struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int    `json:"size"`
}

// image is an OCI image manifest's fields a test sets.
type image struct {
	artifactType string
	annotations  map[string]string
	subject      *descriptorJSON
	layers       int
}

// pushImage pushes an image's blobs and its manifest under ref, returning
// the manifest's digest and bytes.
func (s *testServer) pushImage(repo, ref string, img image) (digest.Digest, []byte) {
	s.t.Helper()
	payload := s.imageManifest(repo, img)
	res := s.do("PUT", "/v2/"+repo+"/manifests/"+ref, payload, "Content-Type", mtManifest)
	res.expect(s.t, http.StatusCreated, "")
	return digest.FromBytes(payload), payload
}

// imageManifest pushes an image's blobs and returns its manifest.
func (s *testServer) imageManifest(repo string, img image) []byte {
	s.t.Helper()
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     mtManifest,
		"config":        descriptorJSON{mtConfig, s.pushBlob(repo, config).String(), len(config)},
	}
	layers := []descriptorJSON{}
	for i := range img.layers {
		l := []byte(strings.Repeat("layer", i+1) + repo)
		layers = append(layers, descriptorJSON{mtLayer, s.pushBlob(repo, l).String(), len(l)})
	}
	m["layers"] = layers
	if img.artifactType != "" {
		m["artifactType"] = img.artifactType
	}
	if img.annotations != nil {
		m["annotations"] = img.annotations
	}
	if img.subject != nil {
		m["subject"] = img.subject
	}
	b, err := json.Marshal(m)
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}
