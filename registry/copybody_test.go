package registry

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/berth-registry/berth/storage"
)

// storeFails is an upload whose store refuses the bytes it read: it
// reads the body to its failure, as upload.ReadFrom does before writing
// what it read, then fails with its own error.
type storeFails struct {
	storage.Upload
	err error
}

func (u storeFails) ReadFrom(r io.Reader) (int64, error) {
	_, _ = io.Copy(io.Discard, r)
	return 0, u.err
}

// TestCopyBodyBlamesTheStoreWhenItFails: a body cut short whose last
// bytes the store then refused fails with the store's error, not as the
// client's bad body.
func TestCopyBodyBlamesTheStoreWhenItFails(t *testing.T) {
	full := errors.New("no space left on device")
	cut := errors.New("connection reset by peer")
	body := io.MultiReader(strings.NewReader("some bytes"), errReader{cut})
	err := copyBody(storeFails{err: full}, body, -1)
	if !errors.Is(err, full) {
		t.Fatalf("copyBody = %v, want the store's error", err)
	}
	// The read's own failure is still the client's.
	err = copyBody(storeFails{err: cut}, io.MultiReader(strings.NewReader("x"), errReader{cut}), -1)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeBlobUploadInvalid {
		t.Fatalf("copyBody of a cut body = %v, want BLOB_UPLOAD_INVALID", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
