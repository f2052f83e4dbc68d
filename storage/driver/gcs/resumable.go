package gcs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The JSON API's resumable upload protocol, spoken directly: the Go
// client's Writer cannot resume a session another process started.
//
//	POST   upload/storage/v1/b/B/o?uploadType=resumable&name=N  → Location: session URI
//	PUT    session, Content-Range: bytes a-b/*                  → 308, Range: bytes=0-n
//	PUT    session, Content-Range: bytes a-b/total              → 200 (object created)
//	PUT    session, Content-Range: bytes */*                    → 308 (status query)
//	DELETE session                                              → 499 (cancelled)

// statusResumeIncomplete is GCS's "308 Resume Incomplete": the chunk is
// stored and more are expected.
const statusResumeIncomplete = http.StatusPermanentRedirect

// startSession opens a resumable upload that will create the object key.
func (d *Driver) startSession(ctx context.Context, key string) (string, error) {
	q := url.Values{"uploadType": {"resumable"}, "name": {key}}
	u := d.uploadBase + "?" + q.Encode()
	body := fmt.Sprintf(`{"name":%s,"contentType":%q}`, strconv.Quote(key), blobContentType)
	var session string
	err := d.retry(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
		req.Header.Set("X-Upload-Content-Type", blobContentType)
		resp, err := d.hc.Do(req)
		if err != nil {
			return err
		}
		defer drain(resp)
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
			return answerError("start upload session", resp)
		}
		session = resp.Header.Get("Location")
		if session == "" {
			return fmt.Errorf("gcs: start upload session: no Location in the answer")
		}
		return nil
	})
	return session, err
}

// upload sends data, which starts at offset off of the upload. Unless final,
// len(data) must be a multiple of 256 KiB, and upload returns after one
// accepted request with the offset GCS has stored, which may be short of
// off+len(data): the caller sends the rest again later. With final, the
// upload ends at off+len(data) and upload returns once the object exists.
// A failed request is retried from what a status query says is stored.
func (d *Driver) upload(ctx context.Context, session string, data []byte, off int64, final bool) (int64, error) {
	for attempt := 1; ; attempt++ {
		stored, done, err := d.putRange(ctx, session, data, off, final)
		switch {
		case err == nil && final && !done:
			// A final request GCS stored only in part: send the rest.
		case err == nil:
			return stored, nil
		case attempt >= maxAttempts || !retryable(ctx, err):
			return off, err
		default:
			if err := backoff(ctx, attempt); err != nil {
				return off, err
			}
			stored, done, err = d.putRange(ctx, session, nil, -1, false)
			if err != nil {
				continue
			}
			if done {
				return off + int64(len(data)), nil
			}
		}
		if stored < off || stored > off+int64(len(data)) {
			return off, fmt.Errorf("gcs: upload session holds %d bytes, expected %d to %d", stored, off, off+int64(len(data)))
		}
		data, off = data[stored-off:], stored
	}
}

// putRange sends one PUT to the session: data at off, or a status query
// when off < 0. It returns the bytes stored and whether the object exists.
func (d *Driver) putRange(ctx context.Context, session string, data []byte, off int64, final bool) (int64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, session, bytes.NewReader(data))
	if err != nil {
		return 0, false, err
	}
	req.ContentLength = int64(len(data))
	total := "*"
	if final {
		total = strconv.FormatInt(off+int64(len(data)), 10)
	}
	switch {
	case off < 0:
		req.Header.Set("Content-Range", "bytes */*")
	case len(data) == 0:
		req.Header.Set("Content-Range", "bytes */"+total)
	default:
		req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%s", off, off+int64(len(data))-1, total))
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated:
		return off + int64(len(data)), true, nil
	case statusResumeIncomplete:
		stored, err := parseStored(resp.Header.Get("Range"))
		return stored, false, err
	}
	return 0, false, answerError("upload chunk", resp)
}

// parseStored reads a Range header "bytes=0-N": N+1 bytes are stored. No
// header means none are.
func parseStored(h string) (int64, error) {
	if h == "" {
		return 0, nil
	}
	_, end, ok := strings.Cut(strings.TrimPrefix(h, "bytes="), "-")
	n, err := strconv.ParseInt(end, 10, 64)
	if !ok || err != nil {
		return 0, fmt.Errorf("gcs: upload session answered Range %q", h)
	}
	return n + 1, nil
}

// cancelSession discards a resumable upload and what it stored. A session
// that is already gone counts as cancelled.
func (d *Driver) cancelSession(ctx context.Context, session string) error {
	return d.retry(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, session, nil)
		if err != nil {
			return err
		}
		resp, err := d.hc.Do(req)
		if err != nil {
			return err
		}
		defer drain(resp)
		switch c := resp.StatusCode; {
		// GCS answers 499 to a cancelled session, then 404 or 410.
		case c < 300, c == 499, c == http.StatusNotFound, c == http.StatusGone:
			return nil
		}
		return answerError("cancel upload session", resp)
	})
}

// retry runs a request that is safe to repeat until it succeeds, fails in a
// way repeating will not fix, or has been tried maxAttempts times.
func (d *Driver) retry(ctx context.Context, do func() error) error {
	for attempt := 1; ; attempt++ {
		err := do()
		if err == nil || attempt >= maxAttempts || !retryable(ctx, err) {
			return err
		}
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

func answerError(op string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return &statusError{op: op, code: resp.StatusCode, body: strings.TrimSpace(string(b))}
}

// drain lets the connection be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
