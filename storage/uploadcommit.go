package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// Commit verifies the upload against want, publishes it in the global
// store (unless identical content is there already) and links it into the
// repository.
func (u *upload) Commit(ctx context.Context, want digest.Digest) (Descriptor, error) {
	if u.ended {
		return Descriptor{}, errUploadEnded
	}
	if err := validDigest(want); err != nil {
		// The client may retry with a proper digest: keep the upload.
		_ = u.Close(ctx)
		return Descriptor{}, err
	}
	// An empty blob pushed in one request has its write opened here.
	if _, err := u.writer(); err != nil {
		return Descriptor{}, err
	}
	u.ended = true
	if u.lease != nil {
		// The commit removes the session or fails the lease: the
		// checkpoint of the request before, if not yet written, is not.
		u.lease.supersede()
		defer u.lease.abandon()
		// The lease is renewed while the commit runs; a lapsed one means
		// another request may have written since this one began.
		if err := u.holds(); err != nil {
			return Descriptor{}, &Error{Err: ErrUploadInvalid, Detail: "upload session lost to another request: " + err.Error()}
		}
	}
	size := u.fw.Size()
	r := u.repo
	var link <-chan error
	if u.h != nil && u.alg == want.Algorithm() && u.hashed == size {
		if got := digest.NewDigest(u.alg, u.h); got != want {
			_ = u.fw.Cancel(ctx)
			return Descriptor{}, u.mismatch(ctx, want, got)
		}
		// The write stays open: publish commits it straight to the
		// blob's place, or drops it when the content is there already.
		link = r.addLinkAsync(ctx, want)
	} else {
		u.committed = true
		if err := u.fw.Commit(ctx); err != nil {
			_ = u.discard(ctx)
			return Descriptor{}, wrapDriverErr("commit upload", err)
		}
		got, err := u.rehash(ctx, want.Algorithm(), size)
		if err != nil {
			_ = u.discard(ctx)
			return Descriptor{}, err
		}
		if got != want {
			return Descriptor{}, u.mismatch(ctx, want, got)
		}
		link = r.addLinkAsync(ctx, want)
	}
	deduped, perr := u.publish(ctx, want, size)
	if err := <-link; err != nil && perr == nil {
		perr = err
	}
	if perr == nil && !deduped {
		perr = u.checkPublished(ctx, want, size)
	}
	if perr == nil && deduped {
		perr = u.confirmDeduped(ctx, want, size)
	}
	if !u.committed {
		// Deduplicated, or failed: the write was not used.
		_ = u.fw.Cancel(ctx)
	}
	if perr != nil {
		_ = u.discard(ctx)
		return Descriptor{}, perr
	}
	if err := u.discard(ctx); err != nil {
		// The blob is published and linked: the leftovers are for
		// upload purging, not the client's concern.
		r.reg.log.Warn("upload leftovers not removed", "repo", r.name, "upload", u.id, "err", err)
	}
	r.reg.log.Info("blob committed", "repo", r.name, "digest", want, "bytes", size)
	return Descriptor{MediaType: blobMediaType, Digest: want, Size: size}, nil
}

// checkPublished makes sure a commit that outlived its lease published
// its own bytes. While the lease holds, no other request can have touched
// the session, so what was published is what was verified. A commit that
// froze past it (a stopped process, a hung disk) cannot tell: another
// request may have taken the session over, and the file this one renamed
// into the blob's place may be that request's. What is there is then read
// back, and removed with the link when it is not want.
func (u *upload) checkPublished(ctx context.Context, want digest.Digest, size int64) error {
	if u.lease == nil {
		return nil
	}
	lapsed := u.holds()
	if lapsed == nil {
		return nil
	}
	r := u.repo
	dst := blobDataPath(want)
	got, n, err := hashFile(ctx, r.driver(), dst, want.Algorithm())
	if err == nil && got == want && n == size {
		return nil
	}
	if err != nil && !isNotFound(err) {
		return wrapDriverErr("verify blob", err)
	}
	r.reg.log.Error("commit outlived its upload lease and published other bytes; removed", "repo", r.name, "upload", u.id, "digest", want, "bytes", n, "err", lapsed)
	r.reg.forgetBlob(want)
	if err := deleteIfExists(ctx, r.driver(), dst); err != nil {
		return wrapDriverErr("remove blob", err)
	}
	r.takeBackLink(ctx, layerLink, want)
	return &Error{Err: ErrUploadInvalid, Detail: "upload session lost to another request during the commit: " + lapsed.Error()}
}

// hashFile digests the file at p with alg and counts its bytes.
func hashFile(ctx context.Context, drv driver.Driver, p string, alg digest.Algorithm) (digest.Digest, int64, error) {
	rc, err := drv.Reader(ctx, p, 0)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	dg := alg.Digester()
	n, err := io.Copy(dg.Hash(), rc)
	if err != nil {
		return "", n, err
	}
	return dg.Digest(), n, nil
}

// addLinkAsync links the verified blob d into the repository while the
// caller publishes its data. Each of the two syncs a file and a directory
// or two; side by side, a small push waits for the slower of them rather
// than for both, which the profile of 64 KiB pushes showed as most of
// their time. Linking first is safe: the content was verified, and until
// the data is published a read finds the link but not the blob and
// answers "unknown", as it would after a crash between the two.
func (r *repository) addLinkAsync(ctx context.Context, d digest.Digest) <-chan error {
	done := make(chan error, 1)
	go func() { done <- r.addLink(ctx, layerLink, d, d) }()
	return done
}

// rehash reads the committed upload data back and digests it with alg.
func (u *upload) rehash(ctx context.Context, alg digest.Algorithm, size int64) (digest.Digest, error) {
	dg := alg.Digester()
	rc, err := u.repo.driver().Reader(ctx, uploadDataPath(u.repo.name, u.id), 0)
	if isNotFound(err) && size == 0 {
		return dg.Digest(), nil
	}
	if err != nil {
		return "", wrapDriverErr("verify upload", err)
	}
	defer rc.Close()
	n, err := io.Copy(dg.Hash(), rc)
	if err != nil {
		return "", wrapDriverErr("verify upload", err)
	}
	if n != size {
		return "", fmt.Errorf("storage: upload %s holds %d bytes, expected %d", u.id, n, size)
	}
	return dg.Digest(), nil
}

// mismatch ends an upload whose content is not want: nothing is stored.
func (u *upload) mismatch(ctx context.Context, want, got digest.Digest) error {
	if err := u.discard(ctx); err != nil {
		u.repo.reg.log.Warn("upload leftovers not removed", "repo", u.repo.name, "upload", u.id, "err", err)
	}
	return &Error{Err: ErrDigestInvalid, Digest: want, Detail: "content has digest " + string(got)}
}

func (u *upload) discard(ctx context.Context) error {
	if u.lease != nil && u.holds() != nil {
		// Not this request's session any more.
		return nil
	}
	u.releaseLanded(ctx)
	return u.removeSession(ctx)
}

// publish moves the verified upload data to the blob's place in the global
// store. The driver is asked, not the cache: a stale cache entry must never
// make a new blob's only copy be thrown away. deduped tells that identical
// content was there already and the upload's copy was not used.
func (u *upload) publish(ctx context.Context, d digest.Digest, size int64) (deduped bool, err error) {
	drv := u.repo.driver()
	dst := blobDataPath(d)
	reg := u.repo.reg
	token := reg.cache.blobs.begin()
	// The blob goes in the shared cache too, as a stat of it would: the
	// requests after a push (a HEAD, the manifest's) are answered from
	// this instance's cache and would never tell the shared one, so the
	// other instances would stat it again.
	gen, shared := reg.sharedBegin(ctx, "")
	fi, err := driver.StatFile(ctx, drv, dst)
	if err == nil {
		// Content-addressed: what is there is what was uploaded.
		reg.rememberBlob(ctx, token, gen, shared, d, blobInfo{size: fi.Size, modTime: fi.ModTime})
		return true, nil
	}
	if err != nil && !isNotFound(err) {
		return false, wrapDriverErr("publish blob", err)
	}
	src := uploadDataPath(u.repo.name, u.id)
	if !u.committed {
		u.committed = true
		err = driver.CommitTo(ctx, drv, u.fw, src, dst)
	} else if _, err = drv.Stat(ctx, src); err == nil {
		err = drv.Move(ctx, src, dst)
	}
	if isNotFound(err) && size == 0 {
		// A driver may keep nothing for an empty write.
		err = driver.PutContent(ctx, drv, dst, nil)
	}
	if err != nil {
		return false, wrapDriverErr("publish blob", err)
	}
	// The blob is in its place now: remember it, as a stat would. The
	// manifest push that follows its layers then looks for none of them
	// in the store before its link (one HEAD a layer), and still asks the
	// store for each after it (confirmRevision), which is what keeps it
	// from pointing at content a collection deleted. The store's own
	// modification time is a little earlier than this one; a blob's ETag,
	// its digest, is what a client revalidates with.
	reg.rememberBlob(ctx, token, gen, shared, d, blobInfo{size: size, modTime: time.Now()})
	return false, nil
}

// confirmDeduped checks, once the link is written, that the existing copy
// the upload was deduplicated against is not being garbage-collected
// (gcfence.go). A copy deleted meanwhile is replaced by the upload's own;
// one about to be deleted fails the commit, and the link goes.
func (u *upload) confirmDeduped(ctx context.Context, d digest.Digest, size int64) error {
	r := u.repo
	err := r.reg.confirmLinked(ctx, []digest.Digest{d}, ErrBlobUnknown)
	if errors.Is(err, ErrBlobUnknown) {
		var deduped bool
		if deduped, err = u.publish(ctx, d, size); err == nil && deduped {
			err = r.reg.confirmLinked(ctx, []digest.Digest{d}, ErrBlobUnknown)
		}
	}
	if collected(err, ErrBlobUnknown) {
		r.takeBackLink(ctx, layerLink, d)
	}
	return err
}
