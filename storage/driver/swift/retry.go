package swift

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/ncw/swift/v2"
)

// retries and retryBase bound the retrying of throttled or failed requests;
// the Swift client itself only retries authentication.
const (
	retries   = 5
	retryBase = 100 * time.Millisecond
)

// retrying retries a request Swift answered with 429, 498 (its rate
// limiter) or a 5xx, backing off exponentially, when the request has no
// body to replay (GET, HEAD, DELETE, listings) or one it can replay.
type retrying struct{ next http.RoundTripper }

func (r *retrying) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Context().Value(aloneKey{}) != nil && !req.Close {
		req = req.Clone(req.Context())
		req.Close = true
	}
	for try := 0; ; try++ {
		resp, err := r.next.RoundTrip(req)
		if err != nil || try == retries || !retryable(resp.StatusCode) {
			return resp, err
		}
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return resp, nil
			}
			body, err := req.GetBody()
			if err != nil {
				return resp, nil
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
		resp.Body.Close()
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-time.After(retryBase << try):
		}
	}
}

type aloneKey struct{}

// alone marks the requests made with ctx to close their connection after
// the response. Swift (its eventlet proxy) answers a HEAD of a container or
// an account with 204 and a chunked empty body, "0\r\n\r\n", which a
// client must not read after a HEAD or a 204: net/http leaves it on the
// connection, and the next request sent there reads "0" as its status line
// and fails with a malformed response.
func alone(ctx context.Context) context.Context {
	return context.WithValue(ctx, aloneKey{}, true)
}

func retryable(code int) bool {
	switch code {
	case http.StatusTooManyRequests, 498, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// put stores data at name. The client wraps request bodies so the
// transport cannot replay them; a PUT is therefore retried here, on the
// same status codes, from the bytes still in hand.
func (d *Driver) put(ctx context.Context, name string, data []byte, h swift.Headers) error {
	for try := 0; ; try++ {
		body := &detachable{r: bytes.NewReader(data)}
		_, err := d.conn.ObjectPut(ctx, d.cfg.Container, name, body, false, "", contentType, h)
		body.detach()
		var se *swift.Error
		if err == nil || try == retries || !errors.As(err, &se) || !retryable(se.StatusCode) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(retryBase << try):
		}
	}
}

var errDetached = errors.New("request body read after its put returned")

// detachable is a request body that put cuts off when ObjectPut returns.
// After a timeout the client returns while its request goes on in the
// background (it cancels only through an *http.Transport, not through
// retrying), still reading the body; data is often a writer's pooled
// buffer, which another writer may be refilling by then. A cut-off body
// fails that request instead of sending another write's bytes.
type detachable struct {
	mu sync.Mutex
	r  *bytes.Reader // nil once detached
}

func (b *detachable) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.r == nil {
		return 0, errDetached
	}
	return b.r.Read(p)
}

// Seek lets the client rewind the body to send it again after renewing an
// expired token, as it does with any seekable body.
func (b *detachable) Seek(offset int64, whence int) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.r == nil {
		return 0, errDetached
	}
	return b.r.Seek(offset, whence)
}

// detach waits for a Read in progress to finish; none starts after.
func (b *detachable) detach() {
	b.mu.Lock()
	b.r = nil
	b.mu.Unlock()
}
