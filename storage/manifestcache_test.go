package storage

import (
	"bytes"
	"context"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// corruptManifest rewrites the stored payload of img as a disk fault or a
// hostile writer would: still valid JSON of the same size, but pointing
// its first layer at other content, so only its digest gives it away.
func corruptManifest(t *testing.T, d driver.Driver, img *image) []byte {
	t.Helper()
	other := digest.FromString("other content")
	bad := bytes.Replace(img.payload, []byte(img.manifest.Layers[0].Digest), []byte(other), 1)
	if bytes.Equal(bad, img.payload) {
		t.Fatal("the corruption changed nothing")
	}
	if err := driver.PutContent(context.Background(), driver.Wrap(d), blobDataPath(img.digest), bad); err != nil {
		t.Fatal(err)
	}
	return bad
}

// wantPayload checks that ref is served from repo with exactly want.
func wantPayload(t *testing.T, repo Repository, ref string, want []byte) {
	t.Helper()
	m, err := repo.GetManifest(context.Background(), ref)
	if err != nil {
		t.Fatalf("GetManifest(%s): %v", ref, err)
	}
	if !bytes.Equal(m.Payload, want) {
		t.Fatalf("GetManifest(%s) served %q, want %q", ref, m.Payload, want)
	}
}

// TestManifestFromMemoryOnlyWhileLinked: a manifest read once is served
// from memory, but only while its repository links it: after a DELETE by
// digest the instance that deleted answers unknown at once, another
// instance that had it in memory once StaleBound has passed.
func TestManifestFromMemoryOnlyWhileLinked(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		a, b, clock := twoInstances(t, open)
		ra, rb := a.Repository("mem/app"), b.Repository("mem/app")
		img := newImage(t, "linked")
		img.push(t, ra, "1.0")
		for _, r := range []Repository{ra, rb} {
			wantPayload(t, r, img.digest.String(), img.payload)
			wantPayload(t, r, "1.0", img.payload)
		}
		// Past the bound, A reads the link again but not the payload.
		clock.advance(StaleBound)
		wantPayload(t, ra, img.digest.String(), img.payload)

		if err := rb.DeleteManifest(ctx, img.digest); err != nil {
			t.Fatal(err)
		}
		for _, ref := range []string{img.digest.String(), "1.0"} {
			_, err := rb.GetManifest(ctx, ref)
			wantErr(t, err, ErrManifestUnknown)
		}
		clock.advance(StaleBound)
		_, err := ra.GetManifest(ctx, img.digest.String())
		wantErr(t, err, ErrManifestUnknown)
		_, err = ra.StatManifest(ctx, img.digest.String())
		wantErr(t, err, ErrManifestUnknown)
	})
}

// TestManifestCollectedIsServedByNoInstance: an untagged manifest two
// instances have in memory is deleted by a garbage collection run
// elsewhere; neither serves it once StaleBound has passed.
func TestManifestCollectedIsServedByNoInstance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		a, b, clock := twoInstances(t, open)
		img := newImage(t, "untagged")
		img.push(t, a.Repository("mem/app"), img.digest.String())
		for _, reg := range []*Registry{a, b} {
			wantPayload(t, reg.Repository("mem/app"), img.digest.String(), img.payload)
		}
		if res, err := onlineRun(t, open(), true, "", nil); err != nil || res.Manifests == 0 {
			t.Fatalf("GarbageCollect = %+v, %v; want the untagged manifest deleted", res, err)
		}
		clock.advance(StaleBound)
		for _, reg := range []*Registry{a, b} {
			_, err := reg.Repository("mem/app").GetManifest(ctx, img.digest.String())
			wantErr(t, err, ErrManifestUnknown)
		}
	})
}

// TestManifestNotMatchingItsDigestIsNotServed: stored bytes that do not
// hash to the manifest's digest are refused, by tag and by digest, and
// not kept; an instance that checked the right bytes before the
// corruption goes on serving them, since the digest names them, also
// after it noticed a garbage collection.
func TestManifestNotMatchingItsDigestIsNotServed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		a, _, _ := twoInstances(t, open)
		img := newImage(t, "corrupt")
		img.push(t, a.Repository("mem/app"), "1.0")
		wantPayload(t, a.Repository("mem/app"), img.digest.String(), img.payload)
		corruptManifest(t, open(), img)

		fresh := newRegistry(open, Options{DeleteEnabled: true}).Repository("mem/app")
		for range 2 {
			for _, ref := range []string{img.digest.String(), "1.0"} {
				if m, err := fresh.GetManifest(ctx, ref); err == nil {
					t.Fatalf("GetManifest(%s) served %q for %s", ref, m.Payload, img.digest)
				}
				if _, err := fresh.StatManifest(ctx, ref); err == nil {
					t.Fatalf("StatManifest(%s) described corrupt bytes", ref)
				}
			}
		}
		wantPayload(t, a.Repository("mem/app"), "1.0", img.payload)
		// A collection noticed elsewhere empties what says what exists,
		// not the checked bytes.
		a.cache.clear()
		wantPayload(t, a.Repository("mem/app"), "1.0", img.payload)
	})
}
