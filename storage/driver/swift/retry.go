package swift

import (
	"net/http"
	"time"
)

// retries and retryBase bound the retrying of throttled or failed requests;
// the Swift client itself only retries authentication.
const (
	retries   = 5
	retryBase = 100 * time.Millisecond
)

// retrying retries a request Swift answered with 429, 498 (its rate
// limiter) or a 5xx, backing off exponentially, when the request's body can
// be replayed.
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
