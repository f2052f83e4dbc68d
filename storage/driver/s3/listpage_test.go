package s3

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/drivertest"
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
	names := make([]string, count)
	for i := range names {
		names[i] = fmt.Sprintf("t%04d", i)
	}
	seedNames(t, d, names)
}

// seedRecorded writes the tags names under /tags, sorts names, and
// returns a driver whose requests rec records, from none yet.
func seedRecorded(t *testing.T, s *store, names []string) (*recorder, *Driver) {
	t.Helper()
	seedNames(t, s.driver(t, "", nil), names)
	slices.Sort(names)
	rec := newRecorder(t, s.m.Endpoint)
	return rec, rec.driver(t, s)
}

// seedNames writes the tags names under /tags.
func seedNames(t *testing.T, d *Driver, names []string) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make(chan error, len(names))
	for _, name := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := d.PutContent(t.Context(), "/tags/"+name+"/current/link", []byte("x")); err != nil {
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
// tags as a page of 1 000 and asks whether more follow. From the first
// tag that is one listing of 1 000 keys; after a tag, two sent together
// (see TestListPageSendsTwoListingsAtOnce), of at most 1 000 keys each:
// on MinIO a listing of a directory of many names costs about the same
// whatever it returns, so listing more keys than the page needs doubled
// the cost of a page.
func TestListPageAsksOnlyForWhatThePageNeeds(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const count, page = 1050, 1000
	seedTags(t, s.driver(t, "root", nil), count)
	var asked atomic.Int64
	d := s.driver(t, "root", driver.Params{"regionendpoint": listProxy(t, s.m.Endpoint, &asked)})
	for _, tc := range []struct {
		after string
		first int
		most  int64
	}{{"", 0, page}, {"t0010", 11, 2 * page}} {
		asked.Store(0)
		got, more, err := d.ListPage(ctx, "/tags", tc.after, page)
		if err != nil {
			t.Fatalf("ListPage after %q: %v", tc.after, err)
		}
		if want := min(page, count-tc.first); len(got) != want || path.Base(got[0]) != fmt.Sprintf("t%04d", tc.first) || !more {
			t.Fatalf("ListPage after %q: %d names from %s, more %v; want %d from t%04d, more", tc.after, len(got), got[0], more, want, tc.first)
		}
		if n := asked.Load(); n > tc.most {
			t.Errorf("ListPage(n=%d) after %q asked the store for %d keys, want at most %d", page, tc.after, n, tc.most)
		}
	}
}

// TestListPageSendsTwoListingsAtOnce: a page of 1 000 tags after a tag
// took two listings one after the other, since a listing from StartAfter
// at the tag gives the tag's own folder first and S3 returns at most
// 1 000 keys; on MinIO each of them reads the whole tags directory. The
// page now costs two listings sent together, one from past the tag's own
// folder and one of the names extending the tag ("v1-rc" after "v1"),
// and tells whether more follow without a third. Neither goes on with a
// continuation token: MinIO answers one by walking the rest of the
// directory into a cached listing it writes to its drives, and goes on
// after answering. Nothing else is asked (no Stat of the directory, no
// read of a tag).
func TestListPageSendsTwoListingsAtOnce(t *testing.T) {
	s := newStore(t)
	const tags, page = 1050, 1000
	seedTags(t, s.driver(t, "", nil), tags)
	rec := newRecorder(t, s.m.Endpoint)
	// The proxy holds each listing until a second one is in flight, or
	// for at most a minute: listings sent one after the other show as a
	// held one.
	var (
		mu     sync.Mutex
		wait   chan struct{}
		alone  int
		listed int
	)
	barrier := minioProxy(t, rec.url, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.URL.Query().Get("list-type") == "2" {
			mu.Lock()
			listed++
			if wait == nil {
				wait = make(chan struct{})
				ch := wait
				mu.Unlock()
				select {
				case <-ch:
				case <-time.After(time.Minute):
					mu.Lock()
					alone++
					if wait == ch {
						wait = nil
					}
					mu.Unlock()
				}
			} else {
				close(wait)
				wait = nil
				mu.Unlock()
			}
		}
		next.ServeHTTP(w, r)
	})
	d := s.through(t, barrier, nil)
	for _, tc := range []struct {
		after string
		more  bool
	}{{"t0010", true}, {"t0048", true}, {"t0049", false}, {"t0500", false}} {
		got, more, err := d.ListPage(t.Context(), "/tags", tc.after, page)
		if err != nil {
			t.Fatalf("ListPage after %q: %v", tc.after, err)
		}
		first, _ := strconv.Atoi(tc.after[1:])
		first++
		if want := min(page, tags-first); len(got) != want || path.Base(got[0]) != fmt.Sprintf("t%04d", first) || more != tc.more {
			t.Fatalf("ListPage after %q: %d names from %s, more %v; want %d from t%04d, more %v", tc.after, len(got), got[0], more, want, first, tc.more)
		}
		reqs := rec.Take()
		if n := count(reqs, http.MethodGet, "list-type=2"); n != len(reqs) || n != 2 {
			t.Errorf("ListPage(n=%d) after %q sent %q, want two listings and nothing else", page, tc.after, reqs)
		}
		if n := count(reqs, http.MethodGet, "continuation-token="); n != 0 {
			t.Errorf("ListPage(n=%d) after %q went on with a continuation token: %q", page, tc.after, reqs)
		}
		mu.Lock()
		if alone != 0 {
			t.Errorf("ListPage(n=%d) after %q sent %d of its %d listings alone, not together", page, tc.after, alone, listed)
		}
		alone, listed = 0, 0
		mu.Unlock()
	}
}

// TestListPageOfNamesThatExtendAfter: pages of 1 000 after a tag that
// other tags extend with "-" or "." (their keys, "v1-rc/…", sort before
// the tag's own, "v1/…"), after such a tag, and after a tag that more
// than a listing's worth of names extend, are exact and say whether more
// follow; how many listings each costs is counted.
func TestListPageOfNamesThatExtendAfter(t *testing.T) {
	s := newStore(t)
	names := []string{"v1", "v1-rc", "v1-rc.2", "v1.2", "v1.2.3", "v10", "v1_x", "x"}
	for i := range 1100 {
		names = append(names, fmt.Sprintf("w%04d", i), fmt.Sprintf("x-%04d", i))
	}
	rec, d := seedRecorded(t, s, names)
	const page = 1000
	for _, tc := range []struct {
		after    string
		listings int
	}{
		{"", 1},
		{"v1", 2},
		{"v1-rc", 2},
		{"v1.2", 2},
		// v1 and v1.2, shorter names of after, come past after's own keys
		// and are left out: the page is two short of 1 000 and takes a
		// third listing, of the keys it lacks. v1-'s extensions sort
		// after its own keys ("v1-rc/" after "v1-/"), and v1 is left out.
		{"v1.2.3", 3},
		{"v1-", 3},
		{"v0", 2},
		// 1 100 names extend x: the listing of them stops short of x's
		// own keys, and gives the page.
		{"x", 2},
		// The page's last name, x-1050, might be followed only by x, a
		// shorter name of after whose keys come last: one key more tells.
		{"x-0050", 3},
		{"x-0999", 2},
		// x sorts before x-0000…, whose keys come first: the page waits
		// for x's keys, past the 699 names that extend x and do not
		// belong in it, in listings of twice the size each time.
		{"w0500", 9},
	} {
		got, more, err := d.ListPage(t.Context(), "/tags", tc.after, page)
		if err != nil {
			t.Fatalf("ListPage after %q: %v", tc.after, err)
		}
		drivertest.CheckPage(t, "/tags", tc.after, page, names, got, more)
		reqs := rec.Take()
		if n := count(reqs, http.MethodGet, "list-type=2"); n != len(reqs) || n != tc.listings {
			t.Errorf("ListPage after %q sent %d requests, %d listings, want %d listings: %q", tc.after, len(reqs), n, tc.listings, reqs)
		}
	}
}

// TestListPageOfMoreThanAListing: pages of 1 500 names, more than one
// listing holds, through names that extend others, in order and each
// once; a page costs its two listings sent together and one more, from
// where the first stopped.
func TestListPageOfMoreThanAListing(t *testing.T) {
	s := newStore(t)
	var names []string
	for i := range 1600 {
		names = append(names, fmt.Sprintf("t%04d", i))
		if i%100 == 0 {
			names = append(names, fmt.Sprintf("t%04d-rc", i), fmt.Sprintf("t%04d.1", i))
		}
	}
	rec, d := seedRecorded(t, s, names)
	const page = 1500
	var got []string
	after := ""
	for more := true; more; {
		paths, m, err := d.ListPage(t.Context(), "/tags", after, page)
		if err != nil {
			t.Fatalf("ListPage after %q: %v", after, err)
		}
		more = m
		for _, p := range paths {
			got = append(got, path.Base(p))
		}
		reqs := rec.Take()
		if n := count(reqs, http.MethodGet, "list-type=2"); n != len(reqs) || n > 3 {
			t.Errorf("ListPage after %q sent %q, want at most three listings", after, reqs)
		}
		if len(got) == 0 || len(got) > len(names) {
			break
		}
		after = got[len(got)-1]
	}
	if !slices.Equal(got, names) {
		t.Errorf("pages of %d: %d names, want %d (%s)", page, len(got), len(names), drivertest.FirstDifference(got, names))
	}
}
