package swift

import (
	"bytes"
	"context"
	"errors"
	"net/http"
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
		_, err := d.conn.ObjectPut(ctx, d.cfg.Container, name, bytes.NewReader(data), false, "", contentType, h)
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
