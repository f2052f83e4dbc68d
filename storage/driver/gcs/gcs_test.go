package gcs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/storage/driver"
)

func TestParamsRefused(t *testing.T) {
	dir := t.TempDir()
	notSA := filepath.Join(dir, "user.json")
	if err := os.WriteFile(notSA, []byte(`{"type":"authorized_user","client_id":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	base := func(extra driver.Params) driver.Params {
		p := driver.Params{"bucket": "b", "endpoint": "http://127.0.0.1:1"}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	tests := []struct {
		name   string
		params driver.Params
		key    string // the key the error must name
	}{
		{"chunksize not a multiple of 256 KiB", base(driver.Params{"chunksize": 300000}), "chunksize"},
		{"chunksize from env not a multiple", base(driver.Params{"chunksize": "5000000"}), "chunksize"},
		{"chunksize under 256 KiB", base(driver.Params{"chunksize": 128 << 10}), "chunksize"},
		{"chunksize zero", base(driver.Params{"chunksize": 0}), "chunksize"},
		{"chunksize not a number", base(driver.Params{"chunksize": "big"}), "chunksize"},
		{"unknown key", base(driver.Params{"chunk_size": 1 << 20}), "chunk_size"},
		{"no bucket", driver.Params{"endpoint": "http://127.0.0.1:1"}, "bucket"},
		{"keyfile and credentials", base(driver.Params{"keyfile": notSA, "credentials": map[string]any{"type": "service_account"}}), "credentials"},
		{"keyfile missing", base(driver.Params{"keyfile": filepath.Join(dir, "absent.json")}), "keyfile"},
		{"keyfile not a service account", base(driver.Params{"keyfile": notSA}), "keyfile"},
		{"credentials without private key", base(driver.Params{"credentials": map[string]any{"type": "service_account", "client_email": "a@b"}}), "credentials"},
		{"endpoint not http", base(driver.Params{"endpoint": "ftp://127.0.0.1:1"}), "endpoint"},
		{"writeconcurrency 0", base(driver.Params{"writeconcurrency": 0}), "writeconcurrency"},
		{"writeconcurrency over 64", base(driver.Params{"writeconcurrency": 65}), "writeconcurrency"},
		{"writeconcurrency not a number", base(driver.Params{"writeconcurrency": "many"}), "writeconcurrency"},
		{"negative writememory", base(driver.Params{"writememory": -1}), "writememory"},
		{"readconcurrency 0", base(driver.Params{"readconcurrency": 0}), "readconcurrency"},
		{"readconcurrency over 64", base(driver.Params{"readconcurrency": 65}), "readconcurrency"},
		{"negative readmemory", base(driver.Params{"readmemory": -1}), "readmemory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromParams(context.Background(), tt.params)
			var pe *driver.ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("FromParams err = %v, want a *driver.ParamError", err)
			}
			if pe.Key != tt.key {
				t.Fatalf("error names key %q (%v), want %q", pe.Key, err, tt.key)
			}
		})
	}
}

func TestParamsDefaults(t *testing.T) {
	d, err := FromParams(context.Background(), driver.Params{"bucket": "b", "endpoint": "127.0.0.1:1", "rootdirectory": "/reg/"})
	if err != nil {
		t.Fatal(err)
	}
	if d.chunkSize != 16<<20 {
		t.Errorf("chunk size %d, want Distribution's 16 MiB", d.chunkSize)
	}
	if d.writeConcurrency != defaultWriteConcurrency {
		t.Errorf("writeconcurrency %d, want %d", d.writeConcurrency, defaultWriteConcurrency)
	}
	if got := d.key("/a/b"); got != "reg/a/b" {
		t.Errorf("key(/a/b) = %q, want reg/a/b", got)
	}
	if got := d.uploadBase; got != "http://127.0.0.1:1/upload/storage/v1/b/b/o" {
		t.Errorf("upload endpoint %q", got)
	}
}

// pattern returns n bytes that differ at every offset modulo a prime, so a
// chunk sent twice or skipped shows.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// sdk is the driver's bucket through Google's Go client, which the driver
// no longer links: what the driver wrote, as another program sees it.
func sdk(t *testing.T, d *Driver) *storage.BucketHandle {
	t.Helper()
	ep, _, _ := strings.Cut(d.apiBase, "/b/")
	c, err := storage.NewClient(t.Context(), option.WithEndpoint(ep+"/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.Bucket(d.bucketName)
}

// objects lists every object name in the bucket below prefix, sidecars
// included.
func objects(t *testing.T, d *Driver, prefix string) []string {
	t.Helper()
	var names []string
	it := sdk(t, d).Objects(t.Context(), &storage.Query{Prefix: prefix})
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return names
		}
		if err != nil {
			t.Fatalf("list %s: %v", prefix, err)
		}
		names = append(names, a.Name)
	}
}

func writeClose(t *testing.T, d *Driver, path string, appendTo bool, data []byte) int64 {
	t.Helper()
	w, err := d.Writer(t.Context(), path, appendTo)
	if err != nil {
		t.Fatalf("Writer(%s, %v): %v", path, appendTo, err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return w.Size()
}

// TestResumableSessionResumedByNewInstance writes a file in three parts
// through three driver instances, each ending off a 256 KiB boundary, and
// checks that the session (not the sidecar) holds all but the tail.
func TestResumableSessionResumedByNewInstance(t *testing.T) {
	g := testenv.StartGCS(t)
	root := rootFor(t.Name())
	params := driver.Params{"rootdirectory": root, "writeconcurrency": 1}
	const path = "/repo/_uploads/u1/data"
	data := pattern(3*minChunk + 1000)
	parts := [][]byte{data[:minChunk+10], data[minChunk+10 : 2*minChunk+77], data[2*minChunk+77:]}

	var size int64
	for i, part := range parts[:2] {
		d := newDriver(t, g, params)
		size = writeClose(t, d, path, i > 0, part)
		st, err := d.readSidecar(t.Context(), path)
		if err != nil {
			t.Fatalf("after Close %d: %v", i, err)
		}
		if st.session == "" || st.stored%minChunk != 0 || len(st.tail) >= minChunk || st.stored+int64(len(st.tail)) != size {
			t.Fatalf("after Close %d: session %q, stored %d, tail %d, size %d", i, st.session, st.stored, len(st.tail), size)
		}
		if _, err := sdk(t, d).Object(d.key(path)).Attrs(t.Context()); !errors.Is(err, storage.ErrObjectNotExist) {
			t.Fatalf("object visible before Commit: %v", err)
		}
	}
	if want := int64(len(parts[0]) + len(parts[1])); size != want {
		t.Fatalf("Size = %d, want %d", size, want)
	}

	d := newDriver(t, g, params)
	w, err := d.Writer(t.Context(), path, true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != size {
		t.Fatalf("resumed Size = %d, want %d", w.Size(), size)
	}
	if _, err := w.Write(parts[2]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close after Commit: %v", err)
	}
	got, err := driver.GetContent(t.Context(), d, path, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("committed %d bytes differ from the %d written", len(got), len(data))
	}
	if names := objects(t, d, root+"/"); !slices.Equal(names, []string{d.key(path)}) {
		t.Fatalf("bucket holds %q after Commit, want only the file", names)
	}
}

func TestResumeWithoutUnfinishedWriteIsNotFound(t *testing.T) {
	g := testenv.StartGCS(t)
	d := newDriver(t, g, driver.Params{"rootdirectory": rootFor(t.Name())})
	if _, err := d.Writer(t.Context(), "/nothing", true); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Writer(append) err = %v, want ErrNotFound", err)
	}
}

// TestSmallWriteResumedWithoutSession covers a write that never filled
// 256 KiB: it lives in the sidecar alone and commits in one request.
func TestSmallWriteResumedWithoutSession(t *testing.T) {
	g := testenv.StartGCS(t)
	params := driver.Params{"rootdirectory": rootFor(t.Name())}
	writeClose(t, newDriver(t, g, params), "/f", false, []byte("hello "))
	d := newDriver(t, g, params)
	if st, err := d.readSidecar(t.Context(), "/f"); err != nil || st.session != "" {
		t.Fatalf("sidecar: session %q, err %v; want none", st.session, err)
	}
	w, err := d.Writer(t.Context(), "/f", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, err := driver.GetContent(t.Context(), d, "/f", 100); err != nil || string(got) != "hello world" {
		t.Fatalf("content %q, %v", got, err)
	}
}

// TestCancelLeavesNothing cancels a resumed write whose resumable session
// holds data: no object, no sidecar, and the session refuses more data.
func TestCancelLeavesNothing(t *testing.T) {
	d, root := closedElsewhere(t, 1, "/a/data", pattern(2*minChunk+5))
	st, err := d.readSidecar(t.Context(), "/a/data")
	if err != nil || st.session == "" {
		t.Fatalf("no session to cancel: %v", err)
	}
	sent := record(d)
	w, err := d.Writer(t.Context(), "/a/data", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(pattern(minChunk)); err != nil {
		t.Fatal(err)
	}
	cancelLeavesNothing(t, d, w, root)
	// fake-gcs-server ignores the DELETE that ends a session on GCS, so
	// check that it was sent.
	if !slices.Contains(*sent, http.MethodDelete+" "+st.session) {
		t.Fatalf("no DELETE of the session among %q", *sent)
	}
	if _, err := d.Stat(t.Context(), "/a/data"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Stat after Cancel: %v, want ErrNotFound", err)
	}
}

// closedElsewhere writes data at path and closes it through one instance
// on a fresh fake-gcs-server, with writeconcurrency n and a root of the
// test's own; it returns a second instance, to resume the write, and the
// root.
func closedElsewhere(t *testing.T, n int, path string, data []byte) (*Driver, string) {
	t.Helper()
	g := testenv.StartGCS(t)
	root := rootFor(t.Name())
	params := driver.Params{"rootdirectory": root, "writeconcurrency": n}
	writeClose(t, newDriver(t, g, params), path, false, data)
	return newDriver(t, g, params), root
}

// cancelLeavesNothing cancels w and checks that nothing is left under
// root.
func cancelLeavesNothing(t *testing.T, d *Driver, w driver.FileWriter, root string) {
	t.Helper()
	if err := w.Cancel(t.Context()); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if names := objects(t, d, root+"/"); len(names) != 0 {
		t.Fatalf("bucket holds %q after Cancel", names)
	}
}

// record makes d's resumable-upload requests be noted as "METHOD URL".
func record(d *Driver) *[]string {
	var mu sync.Mutex
	sent := new([]string)
	next := d.hc.Transport
	d.hc = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		*sent = append(*sent, r.Method+" "+r.URL.String())
		mu.Unlock()
		return next.RoundTrip(r)
	})}
	return sent
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestFreshWriterDiscardsUnfinishedWrite(t *testing.T) {
	g := testenv.StartGCS(t)
	params := driver.Params{"rootdirectory": rootFor(t.Name())}
	writeClose(t, newDriver(t, g, params), "/f", false, pattern(minChunk+1))
	d := newDriver(t, g, params)
	w, err := d.Writer(t.Context(), "/f", false)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != 0 {
		t.Fatalf("fresh writer Size = %d", w.Size())
	}
	if _, err := d.readSidecar(t.Context(), "/f"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("the unfinished write survived: %v", err)
	}
	if _, err := w.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, _ := driver.GetContent(t.Context(), d, "/f", 100); string(got) != "new" {
		t.Fatalf("content %q, want new", got)
	}
}

// TestUnfinishedWritesHiddenAndListed uses the bucket root (no
// rootdirectory), where the sidecar tree sits next to the files.
func TestUnfinishedWritesHiddenAndListed(t *testing.T) {
	g := testenv.StartGCS(t)
	bucket := g.NewBucket(t)
	d := newDriver(t, g, driver.Params{"bucket": bucket})
	if err := d.PutContent(t.Context(), "/done", []byte("x")); err != nil {
		t.Fatal(err)
	}
	writeClose(t, d, "/up/a/data", false, []byte("partial"))
	writeClose(t, d, "/up/b/data", false, pattern(minChunk+3))

	list, err := d.List(t.Context(), "/")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(list)
	if !slices.Equal(list, []string{"/done"}) {
		t.Fatalf("List(/) = %q, want only /done", list)
	}
	var walked []string
	if err := d.Walk(t.Context(), "/", func(fi driver.FileInfo) error {
		walked = append(walked, fi.Path)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(walked, []string{"/done"}) {
		t.Fatalf("Walk(/) = %q, want only /done", walked)
	}
	if _, err := d.List(t.Context(), "/up"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("List of a directory of unfinished writes: %v, want ErrNotFound", err)
	}

	un, err := d.Unfinished(t.Context(), "/up")
	if err != nil {
		t.Fatal(err)
	}
	if len(un) != 2 || un["/up/a/data"].IsZero() || un["/up/b/data"].IsZero() {
		t.Fatalf("Unfinished(/up) = %v", un)
	}
	if un, _ := d.Unfinished(t.Context(), "/up/a"); len(un) != 1 {
		t.Fatalf("Unfinished(/up/a) = %v, want one", un)
	}

	// Deleting the directory cancels what was unfinished below it.
	if err := d.Delete(t.Context(), "/up"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Delete(/up) = %v, want ErrNotFound: no file was there", err)
	}
	if un, _ := d.Unfinished(t.Context(), "/"); len(un) != 0 {
		t.Fatalf("Unfinished after Delete = %v", un)
	}
}

// TestDistributionUploadObjectsHidden: Distribution keeps an unfinished
// upload at the file's own name with a marker content type.
func TestDistributionUploadObjectsHidden(t *testing.T) {
	g := testenv.StartGCS(t)
	root := rootFor(t.Name())
	d := newDriver(t, g, driver.Params{"rootdirectory": root})
	w := sdk(t, d).Object(d.key("/u/data")).NewWriter(t.Context())
	w.ContentType = legacySessionContentType
	w.Metadata = map[string]string{"Session-URI": "", "Offset": "0"}
	if _, err := w.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stat(t.Context(), "/u/data"); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Stat: %v, want ErrNotFound", err)
	}
	if _, err := d.Reader(t.Context(), "/u/data", 0); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Reader: %v, want ErrNotFound", err)
	}
	if _, err := d.List(t.Context(), "/u"); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("List: %v, want ErrNotFound", err)
	}
}

// serviceAccountKey makes a throwaway service account key.
// Its token_uri is a local token server, whose request count is returned:
// the emulator ignores the bearer token, but the client must get one.
func serviceAccountKey(t *testing.T) (map[string]any, *atomic.Int32) {
	t.Helper()
	var tokens atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokens.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"test-token","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(ts.Close)
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"type":           "service_account",
		"project_id":     "berth-test",
		"private_key_id": "k1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "registry@berth-test.iam.gserviceaccount.com",
		"client_id":      "1",
		"token_uri":      ts.URL + "/token",
	}, &tokens
}

func TestRedirectURL(t *testing.T) {
	g := testenv.StartGCS(t)
	root := rootFor(t.Name())
	get := httpGet(t)

	t.Run("SignedWithKey", func(t *testing.T) {
		key, tokens := serviceAccountKey(t)
		b, _ := json.Marshal(key)
		keyfile := filepath.Join(t.TempDir(), "key.json")
		if err := os.WriteFile(keyfile, b, 0o600); err != nil {
			t.Fatal(err)
		}
		for name, p := range map[string]driver.Params{
			"credentials": {"rootdirectory": root, "credentials": key},
			"keyfile":     {"rootdirectory": root, "keyfile": keyfile},
		} {
			t.Run(name, func(t *testing.T) {
				d := newDriver(t, g, p)
				before := tokens.Load()
				if err := d.PutContent(t.Context(), "/blob", []byte("signed content")); err != nil {
					t.Fatal(err)
				}
				if tokens.Load() == before {
					t.Fatal("requests went out without a token from the key's token_uri")
				}
				r, _ := http.NewRequest(http.MethodGet, "http://registry/v2/x/blobs/y", nil)
				u, err := d.RedirectURL(r, "/blob")
				if err != nil || u == "" {
					t.Fatalf("RedirectURL = %q, %v", u, err)
				}
				if !strings.Contains(u, "X-Goog-Signature=") || !strings.Contains(u, "/"+g.Bucket+"/"+root+"/blob") {
					t.Fatalf("not a V4 signed URL of the object: %s", u)
				}
				if got := get(u); got != "signed content" {
					t.Fatalf("GET signed URL = %q", got)
				}
			})
		}
	})
	t.Run("EmptyWithoutKey", func(t *testing.T) {
		d := newDriver(t, g, driver.Params{"rootdirectory": root})
		r, _ := http.NewRequest(http.MethodGet, "http://registry/", nil)
		if u, err := d.RedirectURL(r, "/blob"); u != "" || err != nil {
			t.Fatalf("RedirectURL = %q, %v; want \"\", nil", u, err)
		}
	})
}

func httpGet(t *testing.T) func(string) string {
	return func(u string) string {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", u, resp.Status, b)
		}
		return string(b)
	}
}

// TestEmulatorHostFromEnvironment: without the endpoint key the driver
// follows STORAGE_EMULATOR_HOST, as the Go client does, uploads included.
func TestEmulatorHostFromEnvironment(t *testing.T) {
	g := testenv.StartGCS(t)
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(g.Endpoint, "http://"))
	d, err := FromParams(t.Context(), driver.Params{"bucket": g.Bucket, "rootdirectory": rootFor(t.Name()), "chunksize": minChunk})
	if err != nil {
		t.Fatal(err)
	}
	data := pattern(2*minChunk + 9)
	w, err := d.Writer(t.Context(), "/f", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, err := driver.GetContent(t.Context(), d, "/f", 1<<20)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
}

// TestResumeRefusesATailLongerThanAChunk: the driver never saves more than
// a chunk of tail, so a sidecar that does was written by something else;
// resuming it is an error, not a crash in Write.
func TestResumeRefusesATailLongerThanAChunk(t *testing.T) {
	g := testenv.StartGCS(t)
	d := newDriver(t, g, driver.Params{"rootdirectory": rootFor(t.Name()), "chunksize": 256 << 10})
	w := sdk(t, d).Object(d.sidecarKey("/f")).NewWriter(t.Context())
	hdr := `{"stored":0,"started":"2026-01-01T00:00:00Z"}` + "\n"
	if _, err := w.Write(append([]byte(hdr), bytes.Repeat([]byte("x"), 256<<10+100)...)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fw, err := d.Writer(t.Context(), "/f", true)
	if err == nil {
		fw.Close()
		t.Fatal("Writer(append) resumed a tail of more than a 256 KiB chunk")
	}
	if !strings.Contains(err.Error(), "more than a chunk") {
		t.Fatalf("Writer(append) err = %v, want the tail refused", err)
	}
}

// TestRequestsTravelOnSeparateConnections: the driver speaks HTTP/1.1 even
// to a server that offers HTTP/2, so the parts of a write in flight take a
// connection each rather than share one.
func TestRequestsTravelOnSeparateConnections(t *testing.T) {
	var mu sync.Mutex
	protos, peers := map[string]bool{}, map[string]bool{}
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos[r.Proto], peers[r.RemoteAddr] = true, true
		mu.Unlock()
		<-release
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	d, err := FromParams(t.Context(), driver.Params{"bucket": "b", "endpoint": srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	// Trust the test server's certificate, as the system's roots trust GCS's.
	tr := d.hc.Transport.(*limited).rt.(*http.Transport)
	tr.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := d.del(t.Context(), "k"); err != nil {
				t.Error(err)
			}
		})
	}
	// Over one HTTP/2 connection the three would come from one peer.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(peers)
		mu.Unlock()
		if n == 3 {
			break
		}
	}
	close(release)
	wg.Wait()
	if len(protos) != 1 || !protos["HTTP/1.1"] || len(peers) != 3 {
		t.Errorf("requests arrived as %v from %d connections, want HTTP/1.1 from 3", protos, len(peers))
	}
}

// TestUserAgentParameter: useragent replaces the User-Agent of every
// request; without it the HTTP client's own is sent.
func TestUserAgentParameter(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("User-Agent")
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	for _, tt := range []struct{ param, want string }{
		{"acme-registry/2.1", "acme-registry/2.1"},
		{"", "Go-http-client/1.1"},
	} {
		p := driver.Params{"bucket": "b", "endpoint": srv.URL}
		if tt.param != "" {
			p["useragent"] = tt.param
		}
		d, err := FromParams(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.del(t.Context(), "k"); err != nil {
			t.Fatal(err)
		}
		if ua := <-got; ua != tt.want {
			t.Errorf("useragent %q: the request said %q, want %q", tt.param, ua, tt.want)
		}
	}
}
