package s3

import (
	"net/http"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/berth-registry/berth/storage/driver"
)

// minioProxy stands between a driver and MinIO at upstream and returns its
// address. Every request goes to handle first, which watches it, answers
// it itself (see refuse) or passes it on to MinIO through next.
// The driver signs for the proxy's address, so its Host goes on.
func minioProxy(t *testing.T, upstream string, handle func(w http.ResponseWriter, r *http.Request, next http.Handler)) string {
	t.Helper()
	return testenv.StoreProxy(t, upstream, true, handle)
}

// refuse answers a request as S3 does one it denies.
func refuse(w http.ResponseWriter) {
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>refused by the test</Message></Error>`))
}

// through is a driver on the store that talks to MinIO through the proxy
// at proxyURL; extra overrides or adds keys.
func (s *store) through(t *testing.T, proxyURL string, extra driver.Params) *Driver {
	t.Helper()
	params := driver.Params{"regionendpoint": proxyURL}
	for k, v := range extra {
		params[k] = v
	}
	return s.driver(t, "", params)
}

// recorder stands between a driver and MinIO and notes every request the
// driver sends, as "METHOD /bucket/key?query", so that a test can count
// the round trips an operation costs.
type recorder struct {
	url string
	testenv.Requests
}

func newRecorder(t *testing.T, upstream string) *recorder {
	t.Helper()
	rec := &recorder{}
	rec.url = minioProxy(t, upstream, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		rec.Note(r)
		next.ServeHTTP(w, r)
	})
	return rec
}

// driver is a driver on the store that talks to MinIO through rec.
func (rec *recorder) driver(t *testing.T, s *store) *Driver {
	t.Helper()
	return s.through(t, rec.url, nil)
}

// count tells how many of reqs are method on a key containing part.
func count(reqs []string, method, part string) int {
	n := 0
	for _, r := range reqs {
		if strings.HasPrefix(r, method+" ") && strings.Contains(r, part) {
			n++
		}
	}
	return n
}
