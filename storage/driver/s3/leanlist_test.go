package s3

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
)

// TestLeanListsAndBatchDeletes: the listings of List, Stat and Walk and
// the listings and batch delete of Delete go out lean (without the SDK's
// invocation header) and answer against MinIO what they answered through
// the SDK.
func TestLeanListsAndBatchDeletes(t *testing.T) {
	s := newStore(t)
	var mu sync.Mutex
	var lists, deletes, sdk int
	proxy := minioProxy(t, s.m.Endpoint, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		mu.Lock()
		switch q := r.URL.Query(); {
		case q.Has("list-type"):
			lists++
		case r.Method == http.MethodPost && q.Has("delete"):
			deletes++
		}
		if r.Header.Get("Amz-Sdk-Request") != "" {
			sdk++
		}
		mu.Unlock()
		next.ServeHTTP(w, r)
	})
	d := s.through(t, proxy, nil)
	if d.lean == nil {
		t.Fatal("the driver has no lean path")
	}
	ctx := context.Background()
	files := []string{"/dir/a", "/dir/b.c", "/dir/sub/d-e", "/dir/sub/deeper/f"}
	for _, p := range files {
		if err := d.PutContent(ctx, p, []byte(p)); err != nil {
			t.Fatalf("PutContent %s: %v", p, err)
		}
	}
	got, err := d.List(ctx, "/dir")
	if want := []string{"/dir/a", "/dir/b.c", "/dir/sub"}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("List = %v, %v, want %v", got, err, want)
	}
	if fi, err := d.Stat(ctx, "/dir/sub"); err != nil || !fi.IsDir {
		t.Fatalf("Stat of a directory = %+v, %v", fi, err)
	}
	var walked []string
	err = d.Walk(ctx, "/dir", func(fi driver.FileInfo) error {
		if !fi.IsDir {
			walked = append(walked, fi.Path)
			if fi.Size != int64(len(fi.Path)) || fi.ModTime.IsZero() {
				t.Errorf("Walk: %+v", fi)
			}
		}
		return nil
	})
	slices.Sort(walked)
	if want := slices.Sorted(slices.Values(files)); err != nil || !slices.Equal(walked, want) {
		t.Fatalf("Walk = %v, %v, want %v", walked, err, want)
	}
	// A page from a key on, with the SDK's MaxKeys and StartAfter.
	out, err := d.listLevel(ctx, d.dirPrefix("/dir"), d.key("/dir/a"), nil, 1)
	if err != nil || len(out.Contents)+len(out.CommonPrefixes) != 1 || !*out.IsTruncated || out.NextContinuationToken == nil {
		t.Fatalf("listLevel after /dir/a, one key = %+v, %v", out, err)
	}
	if err := d.Delete(ctx, "/dir"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for _, p := range files {
		if _, err := d.Stat(ctx, p); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("Stat %s after Delete = %v, want ErrNotFound", p, err)
		}
	}
	if err := d.Delete(ctx, "/dir"); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Delete of a deleted directory = %v, want ErrNotFound", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if lists == 0 || deletes == 0 {
		t.Errorf("%d listings and %d batch deletes seen, want some of each", lists, deletes)
	}
	if sdk != 0 {
		t.Errorf("%d requests went through the SDK", sdk)
	}
}

// TestLeanCopyRetriesA200Error: a copy (Move, and the commit of a write
// from its state object) goes out lean, and one that S3 answers 200 with
// an error body (a copy that failed once it began) is sent again, as the
// SDK treats that answer as a 500.
func TestLeanCopyRetriesA200Error(t *testing.T) {
	s := newStore(t)
	var mu sync.Mutex
	var copies, sdk int
	proxy := minioProxy(t, s.m.Endpoint, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		mu.Lock()
		first := false
		if r.Header.Get("X-Amz-Copy-Source") != "" {
			copies++
			first = copies == 1
		}
		if r.Header.Get("Amz-Sdk-Request") != "" {
			sdk++
		}
		mu.Unlock()
		if first {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>failed by the test</Message></Error>`))
			return
		}
		next.ServeHTTP(w, r)
	})
	d := s.through(t, proxy, nil)
	ctx := context.Background()
	if err := d.PutContent(ctx, "/src", []byte("copied")); err != nil {
		t.Fatal(err)
	}
	if err := d.Move(ctx, "/src", "/dst"); err != nil {
		t.Fatalf("Move: %v", err)
	}
	if got := readAll(t, d, "/dst"); string(got) != "copied" {
		t.Fatalf("read after Move: %q", got)
	}
	if _, err := d.Stat(ctx, "/src"); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Stat of the moved file = %v, want ErrNotFound", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if copies != 2 {
		t.Errorf("%d copies sent, want 2 (the one answered with an error, again)", copies)
	}
	if sdk != 0 {
		t.Errorf("%d requests went through the SDK", sdk)
	}
}
