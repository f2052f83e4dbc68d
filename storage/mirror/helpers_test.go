package mirror_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/registry"
	"github.com/berth-registry/berth/storage"
	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/filesystem"
	"github.com/berth-registry/berth/storage/mirror"
	"github.com/opencontainers/go-digest"
)

// upstreamUser and upstreamPass log in to the test's upstream registries.
const (
	upstreamUser = "puller"
	upstreamPass = "s3cret-pass"
)

// image is what push put in an upstream.
type image struct {
	manifest digest.Digest
	payload  []byte
	layers   []digest.Digest
	config   digest.Digest
}

// client talks plain HTTP to a registry, with basic credentials when set.
type client struct {
	base       string // http://host:port
	user, pass string
}

func (c client) do(t testing.TB, method, path string, body []byte, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, c.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body = http.NoBody
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// get returns status, headers and the whole body.
func (c client) get(t testing.TB, path string) (int, http.Header, []byte) {
	t.Helper()
	resp := c.do(t, http.MethodGet, path, nil, http.Header{"Accept": {"application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json"}})
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading: %v", path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// pushBlob uploads content monolithically.
func (c client) pushBlob(t testing.TB, repo string, content []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(content)
	resp := c.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	if strings.HasPrefix(loc, "/") {
		loc = c.base + loc
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	req, _ := http.NewRequest(http.MethodPut, loc+sep+"digest="+d.String(), bytes.NewReader(content))
	req.Header.Set("Content-Type", "application/octet-stream")
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("put blob: %s", resp.Status)
	}
	return d
}

// push puts an OCI image of the given layers under repo:tag.
func (c client) push(t testing.TB, repo, tag string, layers ...[]byte) image {
	t.Helper()
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"tag":%q}`, tag))
	img := image{config: c.pushBlob(t, repo, cfg)}
	type desc struct {
		MediaType string        `json:"mediaType"`
		Digest    digest.Digest `json:"digest"`
		Size      int           `json:"size"`
	}
	m := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{2, "application/vnd.oci.image.manifest.v1+json", desc{"application/vnd.oci.image.config.v1+json", img.config, len(cfg)}, []desc{}}
	for _, l := range layers {
		d := c.pushBlob(t, repo, l)
		img.layers = append(img.layers, d)
		m.Layers = append(m.Layers, desc{"application/vnd.oci.image.layer.v1.tar", d, len(l)})
	}
	img.payload, _ = json.Marshal(m)
	img.manifest = digest.FromBytes(img.payload)
	resp := c.do(t, http.MethodPut, "/v2/"+repo+"/manifests/"+tag, img.payload, http.Header{"Content-Type": {m.MediaType}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("put manifest: %s", resp.Status)
	}
	return img
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// served is a mirror in this process, served over HTTP by the registry
// package as berth serve does, on a filesystem root that outlives it (for
// restarts).
type served struct {
	m    *mirror.Mirror
	reg  *storage.Registry
	srv  *httptest.Server
	root string
	client
}

// startMirror serves a mirror of ups on root (a new directory when "").
func startMirror(t testing.TB, root string, ups ...mirror.Upstream) *served {
	t.Helper()
	if root == "" {
		root = t.TempDir()
	}
	d, err := filesystem.New(filesystem.Params{RootDirectory: root, MaxThreads: 25})
	if err != nil {
		t.Fatal(err)
	}
	mr := startMirrorOn(t, d, ups...)
	mr.root = root
	return mr
}

// startMirrorOn serves a mirror of ups storing with d.
func startMirrorOn(t testing.TB, d driver.Driver, ups ...mirror.Upstream) *served {
	t.Helper()
	reg := storage.New(d, storage.Options{}, nil)
	m, err := mirror.New(reg, mirror.Options{Upstreams: ups, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(m, registry.Options{}, nil))
	t.Cleanup(m.Wait) // after the server: a fetch outlives its clients
	t.Cleanup(srv.Close)
	return &served{m: m, reg: reg, srv: srv, client: client{base: srv.URL}}
}

// upstream starts Distribution with basic auth and returns it with a
// client logged in to it.
func startUpstream(t testing.TB) (*testenv.Distribution, client) {
	t.Helper()
	d := testenv.StartDistribution(t, upstreamUser, upstreamPass, "")
	return d, client{base: "http://" + d.Addr, user: upstreamUser, pass: upstreamPass}
}

func basicUpstream(d *testenv.Distribution) mirror.Upstream {
	return mirror.Upstream{RemoteURL: "http://" + d.Addr, Credentials: mirror.Static{Username: d.User, Password: d.Password}}
}

// errorCode reads the first OCI error code of a body.
func errorCode(body []byte) (string, string) {
	var e struct {
		Errors []struct{ Code, Message string }
	}
	if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 {
		return "", ""
	}
	return e.Errors[0].Code, e.Errors[0].Message
}
