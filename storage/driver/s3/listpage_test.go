package s3

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
)

// listProxy stands between the driver and MinIO and adds up the max-keys
// of the listings the driver asks for.
func listProxy(t *testing.T, upstream string, asked *atomic.Int64) string {
	t.Helper()
	return minioProxy(t, upstream, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if q := r.URL.Query(); r.Method == http.MethodGet && q.Get("list-type") == "2" {
			n, err := strconv.Atoi(q.Get("max-keys"))
			if err != nil {
				n = driver.MaxListKeys // S3's default
			}
			asked.Add(int64(n))
		}
		next.ServeHTTP(w, r)
	})
}

// seedTags writes the tags t0000 to t<count-1> under /tags, as a
// repository's tags directory holds them.
func seedTags(t *testing.T, d *Driver, count int) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make(chan error, count)
	for i := range count {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := d.PutContent(t.Context(), fmt.Sprintf("/tags/t%04d/current/link", i), []byte("x")); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestListPageAsksOnlyForWhatThePageNeeds: the API lists a page of 1 000
// tags as a page of 1 001 (the last one tells whether a next page
// follows). The store is asked for 1 001 keys, not for two listings of
// 1 000: on MinIO a listing of a directory of many names costs about the
// same whatever it returns, so the second one doubled the cost of a page.
func TestListPageAsksOnlyForWhatThePageNeeds(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const count, page = 1050, 1001
	seedTags(t, s.driver(t, "root", nil), count)
	var asked atomic.Int64
	d := s.driver(t, "root", driver.Params{"regionendpoint": listProxy(t, s.m.Endpoint, &asked)})
	for _, after := range []string{"", "t0010"} {
		asked.Store(0)
		got, err := d.ListPage(ctx, "/tags", after, page)
		if err != nil {
			t.Fatalf("ListPage after %q: %v", after, err)
		}
		first := 0
		if after != "" {
			first = 11
		}
		if want := min(page, count-first); len(got) != want || path.Base(got[0]) != fmt.Sprintf("t%04d", first) {
			t.Fatalf("ListPage after %q: %d names from %s, want %d from t%04d", after, len(got), got[0], want, first)
		}
		// A listing after "t0010" starts with the key "t0010/", which is
		// after's own: one key more.
		if n := asked.Load(); n > page+1 {
			t.Errorf("ListPage(n=%d) after %q asked the store for %d keys, want at most %d", page, after, n, page+1)
		}
	}
}

// TestListPageGoesOnFromStartAfter: a page of 1 001 tags takes two
// listings on S3, whose listings stop at 1 000 keys. The second starts
// from StartAfter again, not from the first one's continuation token:
// MinIO answers such a token by walking the rest of the directory into a
// cached listing it writes to its drives, and goes on after answering,
// which made each tag page of a directory of a hundred thousand tags cost
// many times one listing. Nothing else is asked (no Stat of the
// directory, no read of a tag).
func TestListPageGoesOnFromStartAfter(t *testing.T) {
	s := newStore(t)
	const tags, page = 1050, 1001
	seedTags(t, s.driver(t, "", nil), tags)
	rec := newRecorder(t, s.m.Endpoint)
	d := rec.driver(t, s)
	for _, after := range []string{"", "t0010", "t0040"} {
		got, err := d.ListPage(t.Context(), "/tags", after, page)
		if err != nil {
			t.Fatalf("ListPage after %q: %v", after, err)
		}
		first := 0
		if after != "" {
			first, _ = strconv.Atoi(after[1:])
			first++
		}
		if want := min(page, tags-first); len(got) != want || path.Base(got[0]) != fmt.Sprintf("t%04d", first) {
			t.Fatalf("ListPage after %q: %d names from %s, want %d from t%04d", after, len(got), got[0], want, first)
		}
		reqs := rec.Take()
		if n := count(reqs, http.MethodGet, "list-type=2"); n != len(reqs) || n > 2 {
			t.Errorf("ListPage(n=%d) after %q sent %q, want at most two listings and nothing else", page, after, reqs)
		}
		if n := count(reqs, http.MethodGet, "continuation-token="); n != 0 {
			t.Errorf("ListPage(n=%d) after %q went on with a continuation token: %q", page, after, reqs)
		}
	}
}
