package swift

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ncw/swift/v2"

	"github.com/berth-registry/berth/storage/driver"
)

func names(t *testing.T, d *Driver) []string {
	t.Helper()
	n, err := d.conn.ObjectNamesAll(t.Context(), d.cfg.Container, nil)
	if err != nil {
		t.Fatalf("list container: %v", err)
	}
	return n
}

func withPrefix(all []string, prefix string) []string {
	var out []string
	for _, n := range all {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

func read(t *testing.T, d *Driver, path string) []byte {
	t.Helper()
	r, err := d.Reader(t.Context(), path, 0)
	if err != nil {
		t.Fatalf("Reader(%s): %v", path, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSegmentsStateAndManifestFollowDistributionLayout(t *testing.T) {
	f := newFixture(t)
	cont := f.container(t)
	extra := driver.Params{"chunksize": 1 << 20, "prefix": "reg"}
	ctx := t.Context()
	data := bytes.Repeat([]byte("berth-swift-"), 300000) // 3.4 MiB

	w, err := f.driver(t, cont, extra).Writer(ctx, "/up/data", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:2<<20+100]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	d := f.driver(t, cont, extra)
	all := names(t, d)
	if segs := withPrefix(all, "reg/segments/"); len(segs) != 3 {
		t.Fatalf("segments after Close = %v, want 3 (2 full, 1 tail)", segs)
	}
	if st := withPrefix(all, "reg/uploads/"); !slices.Equal(st, []string{"reg/uploads/up/data"}) {
		t.Fatalf("state objects = %v, want reg/uploads/up/data", st)
	}
	if len(withPrefix(all, "reg/files/")) != 0 {
		t.Fatalf("a file is visible before Commit: %v", all)
	}

	w, err = d.Writer(ctx, "/up/data", true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != 2<<20+100 {
		t.Fatalf("resumed Size = %d", w.Size())
	}
	if _, err := w.Write(data[2<<20+100:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	_, h, err := d.conn.Object(ctx, cont, "reg/files/up/data")
	if err != nil || !strings.HasPrefix(h["X-Object-Manifest"], cont+"/reg/segments/") {
		t.Fatalf("reg/files/up/data headers = %v, %v; want a DLO manifest over reg/segments/", h, err)
	}
	if st := withPrefix(names(t, d), "reg/uploads/"); len(st) != 0 {
		t.Fatalf("state objects after Commit = %v", st)
	}
	if got := read(t, d, "/up/data"); !bytes.Equal(got, data) {
		t.Fatalf("content differs: %d bytes, want %d", len(got), len(data))
	}

	// Moving a large object moves its manifest; deleting it takes the
	// segments too.
	if err := d.Move(ctx, "/up/data", "/blobs/data"); err != nil {
		t.Fatal(err)
	}
	if got := read(t, d, "/blobs/data"); !bytes.Equal(got, data) {
		t.Fatal("content differs after Move")
	}
	if err := d.Delete(ctx, "/blobs"); err != nil {
		t.Fatal(err)
	}
	if left := names(t, d); len(left) != 0 {
		t.Fatalf("objects left after Delete = %v", left)
	}
}

func TestCancelAndDeleteLeaveNoSegments(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		end  func(*Driver, driver.FileWriter) error
	}{
		{"Cancel", func(d *Driver, w driver.FileWriter) error { return w.Cancel(ctx) }},
		{"CancelResumed", func(d *Driver, w driver.FileWriter) error {
			if err := w.Close(); err != nil {
				return err
			}
			w2, err := d.Writer(ctx, "/c/u/data", true)
			if err != nil {
				return err
			}
			return w2.Cancel(ctx)
		}},
		{"FreshWriterDiscards", func(d *Driver, w driver.FileWriter) error {
			if err := w.Close(); err != nil {
				return err
			}
			w2, err := d.Writer(ctx, "/c/u/data", false)
			if err != nil {
				return err
			}
			return w2.Cancel(ctx)
		}},
		{"DeleteDirectory", func(d *Driver, w driver.FileWriter) error {
			if err := w.Close(); err != nil {
				return err
			}
			if err := d.PutContent(ctx, "/c/kept", []byte("x")); err != nil {
				return err
			}
			return d.Delete(ctx, "/c")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := f.driver(t, f.container(t), driver.Params{"chunksize": 1 << 20})
			w, err := d.Writer(ctx, "/c/u/data", false)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(make([]byte, 1<<20+10)); err != nil {
				t.Fatal(err)
			}
			if err := tc.end(d, w); err != nil {
				t.Fatal(err)
			}
			if left := names(t, d); len(left) != 0 {
				t.Fatalf("objects left = %v, want none", left)
			}
		})
	}
}

func TestReadsMovesAndDeletesDistributionLargeObjects(t *testing.T) {
	f := newFixture(t)
	cont := f.container(t)
	d := f.driver(t, cont, nil)
	ctx := t.Context()
	// As Distribution v2 wrote them: segments numbered from 1 under a
	// random path, a zero-byte manifest whose prefix has no slash.
	seg := "segments/abc/0123456789abcdef"
	for i, part := range []string{"hello ", "from ", "distribution"} {
		if err := d.conn.ObjectPutString(ctx, cont, seg+"/"+strings.Repeat("0", 15)+string(rune('1'+i)), part, contentType); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.conn.ObjectPut(ctx, cont, "files/docker/blob", bytes.NewReader(nil), false, "", contentType,
		swift.Headers{"X-Object-Manifest": cont + "/" + seg}); err != nil {
		t.Fatal(err)
	}
	fi, err := d.Stat(ctx, "/docker/blob")
	if err != nil || fi.Size != 23 {
		t.Fatalf("Stat = %+v, %v; want 23 bytes", fi, err)
	}
	if got := string(read(t, d, "/docker/blob")); got != "hello from distribution" {
		t.Fatalf("content = %q", got)
	}
	r, err := d.Reader(ctx, "/docker/blob", 11)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "distribution" {
		t.Fatalf("read from 11 = %q", b)
	}
	if err := d.Move(ctx, "/docker/blob", "/docker/moved"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "/docker/moved"); err != nil {
		t.Fatal(err)
	}
	if left := names(t, d); len(left) != 0 {
		t.Fatalf("objects left = %v, want none", left)
	}
}

func TestRedirectURLIsTempURLWhenKeySet(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for _, containerKey := range []bool{false, true} {
		d := f.driver(t, f.container(t), driver.Params{"secretkey": "s3cret", "tempurlcontainerkey": containerKey})
		if err := d.PutContent(ctx, "/blob", []byte("redirected")); err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "/v2/x/blobs/y", nil)
		raw, err := d.RedirectURL(req, "/blob")
		if err != nil || raw == "" {
			t.Fatalf("RedirectURL = %q, %v", raw, err)
		}
		get := func(s string) (int, string) {
			resp, err := http.Get(s)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		if code, body := get(raw); code != http.StatusOK || body != "redirected" {
			t.Fatalf("container key %v: GET temp URL = %d %q", containerKey, code, body)
		}
		u, _ := url.Parse(raw)
		q := u.Query()
		q.Set("temp_url_expires", "9999999999")
		u.RawQuery = q.Encode()
		if code, _ := get(u.String()); code != http.StatusUnauthorized {
			t.Fatalf("tampered temp URL = %d, want 401", code)
		}
	}
	d := f.driver(t, f.container(t), nil)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
	if u, err := d.RedirectURL(req, "/blob"); u != "" || err != nil {
		t.Fatalf("without secretkey RedirectURL = %q, %v; want none", u, err)
	}
}
