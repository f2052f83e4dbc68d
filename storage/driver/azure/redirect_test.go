package azure

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

func TestRedirectURLIsReadOnlySASForTheBlob(t *testing.T) {
	f := newFixture(t)
	cont := f.az.Container(t)
	d := f.driver(t, cont, driver.Params{"rootdirectory": "reg", "redirectexpiry": "5m"})
	ctx := t.Context()
	if err := d.PutContent(ctx, "/blobs/data", []byte("redirected")); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v2/x/blobs/sha256:0", nil)
	raw, err := d.RedirectURL(req, "/blobs/data")
	if err != nil || raw == "" {
		t.Fatalf("RedirectURL = %q, %v; want a URL", raw, err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if want := "/" + f.az.Account + "/" + cont + "/reg/blobs/data"; u.Path != want {
		t.Errorf("path = %s, want %s", u.Path, want)
	}
	if q.Get("sp") != "r" || q.Get("sig") == "" || q.Get("sr") != "b" {
		t.Errorf("query = %v, want a read-only (sp=r) signed blob SAS", q)
	}
	exp, err := time.Parse(time.RFC3339, q.Get("se"))
	if err != nil || exp.Before(before.Add(4*time.Minute)) || exp.After(time.Now().Add(6*time.Minute)) {
		t.Errorf("se = %q (%v), want about 5m from now", q.Get("se"), err)
	}

	// Azurite checks the signature over plain HTTP too: the URL fetches
	// the blob, and a tampered one is refused.
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
		t.Errorf("GET SAS URL = %d %q, want 200 redirected", code, body)
	}
	q.Set("sp", "rw")
	u.RawQuery = q.Encode()
	if code, _ := get(u.String()); code != http.StatusForbidden {
		t.Errorf("GET with widened permissions = %d, want 403", code)
	}
}
