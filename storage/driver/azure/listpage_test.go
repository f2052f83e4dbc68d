package azure

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/berth-registry/berth/storage/driver"
)

// listCounter is a transport that counts List Blobs requests and the
// entries (blobs and prefixes) their answers carry.
type listCounter struct {
	requests, entries atomic.Int64
}

func (c *listCounter) Do(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || req.URL.Query().Get("comp") != "list" {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	c.requests.Add(1)
	c.entries.Add(int64(bytes.Count(body, []byte("<BlobPrefix>")) + bytes.Count(body, []byte("<Blob>"))))
	return resp, nil
}

// dropStartFrom takes startFrom out of each request before it is signed,
// as a service that does not know the parameter ignores it.
type dropStartFrom struct{}

func (dropStartFrom) Do(req *policy.Request) (*http.Response, error) {
	u := req.Raw().URL
	q := u.Query()
	q.Del("startFrom")
	u.RawQuery = q.Encode()
	return req.Next()
}

// hangingLists is a transport under which List Blobs requests get no
// answer until they are given up, as from a frozen service.
type hangingLists struct{}

func (hangingLists) Do(req *http.Request) (*http.Response, error) {
	if req.URL.Query().Get("comp") == "list" {
		<-req.Context().Done()
		return nil, req.Context().Err()
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestListPage pages a directory of more than a thousand entries, whose
// first name, "t", a listing gives after every "t.NNNN/".
func TestListPage(t *testing.T) {
	f := newFixture(t)
	cname := f.container(t)
	d := f.driver(t, cname, nil)
	names := []string{"t"}
	for i := range 1050 {
		names = append(names, fmt.Sprintf("t.%04d", i))
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make(chan error, len(names))
	for _, name := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- d.PutContent(t.Context(), "/tags/"+name+"/current/link", []byte(name))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// withClient is d listing through a client with opts.
	withClient := func(t *testing.T, opts azcore.ClientOptions) *Driver {
		cred, err := container.NewSharedKeyCredential(f.az.Account, f.az.Key)
		if err != nil {
			t.Fatal(err)
		}
		dd := *d
		dd.c, err = container.NewClientWithSharedKeyCredential(d.c.URL(), cred, &container.ClientOptions{ClientOptions: opts})
		if err != nil {
			t.Fatal(err)
		}
		return &dd
	}
	page := func(t *testing.T, d *Driver, after string, n int) {
		t.Helper()
		paths, _, err := driver.ListPage(t.Context(), d, "/tags", after, n)
		if err != nil {
			t.Fatalf("ListPage after %q: %v", after, err)
		}
		i, _ := slices.BinarySearch(names, after)
		if i < len(names) && names[i] == after {
			i++
		}
		want := names[i:min(i+n, len(names))]
		var got []string
		for _, p := range paths {
			got = append(got, path.Base(p))
		}
		if !slices.Equal(got, want) {
			t.Errorf("ListPage after %q, n %d = %q, want %q", after, n, got, want)
		}
	}

	// CostsWhatItReturns: a page is one List Blobs request that carries
	// the page, the entry of after itself and one more (it tells whether
	// more follow), wherever it starts; List would carry all of them.
	t.Run("CostsWhatItReturns", func(t *testing.T) {
		counter := &listCounter{}
		d := withClient(t, azcore.ClientOptions{Transport: counter})
		for _, tc := range []struct {
			after    string
			n        int
			requests int64 // at most
			entries  int64 // at most
		}{
			{"t", 10, 1, 12},
			{"t.0500", 100, 1, 102},
			{"t.0500x", 100, 1, 102},
			{"t.1040", 100, 1, 11},
			// The page waits for "t", listed last: the requests grow, so
			// the wait costs a few of them, not one per two entries.
			{"", 1, 11, 2 * int64(len(names))},
		} {
			counter.requests.Store(0)
			counter.entries.Store(0)
			page(t, d, tc.after, tc.n)
			if r, e := counter.requests.Load(), counter.entries.Load(); r > tc.requests || e > tc.entries {
				t.Errorf("ListPage after %q, n %d: %d list requests carrying %d entries, want at most %d and %d",
					tc.after, tc.n, r, e, tc.requests, tc.entries)
			}
		}
	})

	// ExactOnAServiceWithoutStartFrom: Azurite before 3.37 and older
	// services list from the first name whatever startFrom says; the
	// pages stay exact.
	t.Run("ExactOnAServiceWithoutStartFrom", func(t *testing.T) {
		d := withClient(t, azcore.ClientOptions{PerCallPolicies: []policy.Policy{dropStartFrom{}}})
		for _, tc := range []struct {
			after string
			n     int
		}{{"", 1}, {"", 3}, {"t", 10}, {"t.0500", 100}, {"t.0500x", 100}, {"t.1040", 100}, {"t.1049", 5}, {"u", 5}} {
			page(t, d, tc.after, tc.n)
		}
	})

	// FrozenServiceTimesOut: behind the wrapper, a page that gets no
	// answer fails with driver.ErrTimeout at the metadata deadline
	// instead of waiting as long as the caller does.
	t.Run("FrozenServiceTimesOut", func(t *testing.T) {
		d := driver.WithTimeouts(withClient(t, azcore.ClientOptions{Transport: hangingLists{}}),
			driver.Timeouts{Metadata: 100 * time.Millisecond})
		_, _, err := driver.ListPage(t.Context(), d, "/tags", "t.0500", 100)
		if !errors.Is(err, driver.ErrTimeout) {
			t.Fatalf("ListPage on a frozen service: %v, want driver.ErrTimeout", err)
		}
	})
}
