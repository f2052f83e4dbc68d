package gcs

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"iter"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The JSON API calls the driver makes, spoken directly over d.hc, as the
// resumable upload protocol is (resumable.go). The Go client library would
// link parts of gRPC, OpenTelemetry's SDK, S2A and a second auth library
// into every Berth binary: about 5 MiB more memory at rest in every
// instance, whatever its backend, for the calls below.
//
//	GET    b/B/o/N                       object metadata
//	GET    b/B/o/N?alt=media             its bytes, Range and generation as asked
//	GET    b/B/o?prefix=…                a page of a listing
//	POST   upload/…/b/B/o?uploadType=multipart   a small object, CRC32C checked
//	POST   upload/…/b/B/o?uploadType=media       a component (compose.go)
//	POST   b/B/o/N/compose               the concatenation of up to 32 objects
//	POST   b/B/o/N/rewriteTo/b/B/o/M     a server-side copy, in as many calls as GCS needs
//	DELETE b/B/o/N

// object is the part of an object resource the driver reads.
type object struct {
	Name        string            `json:"name"`
	ContentType string            `json:"contentType"`
	Size        jsonInt           `json:"size"`
	Generation  jsonInt           `json:"generation"`
	Updated     time.Time         `json:"updated"`
	Created     time.Time         `json:"timeCreated"`
	CRC32C      string            `json:"crc32c"`
	Metadata    map[string]string `json:"metadata"`
}

// jsonInt is an int64 that the JSON API sends as a string ("size":
// "1024"); a bare number is taken too.
type jsonInt int64

func (n *jsonInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("gcs: number %s: %w", b, err)
	}
	*n = jsonInt(v)
	return nil
}

// maxAnswer bounds a JSON answer read into memory: a listing page of
// 1 000 objects is about 300 KiB.
const maxAnswer = 32 << 20

// errNoName answers a call on the empty object name, which the JSON API
// would take for the bucket's listing: no object has it.
var errNoName = &statusError{op: "empty object name", code: http.StatusNotFound, body: "refused before any request was sent"}

// objectURL is the JSON API's URL of the object key. Its name is one path
// segment, "/" escaped.
func (d *Driver) objectURL(key string) string {
	return d.apiBase + "/o/" + url.PathEscape(key)
}

// do sends one request and decodes a 2xx answer's JSON into out, when out
// is not nil. It is not retried here: callers that may repeat it wrap it
// in d.retry, building the request again for each attempt.
func (d *Driver) do(ctx context.Context, op, method, u string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode/100 != 2 {
		return answerError(op, resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(out); err != nil {
		return fmt.Errorf("gcs: %s: answer: %w", op, err)
	}
	return nil
}

// attrs reads the metadata of the object key.
func (d *Driver) attrs(ctx context.Context, key string) (object, error) {
	if key == "" {
		return object{}, errNoName
	}
	var o object
	err := d.retry(ctx, func() error {
		o = object{}
		return d.do(ctx, "stat", http.MethodGet, d.objectURL(key), nil, &o)
	})
	return o, err
}

// listQuery is a listing: every object whose name starts with prefix, or
// with delimiter "/" the objects and the prefixes one level below it, from
// startOffset on; fields names the object fields the answer carries.
type listQuery struct {
	prefix, delimiter, startOffset string
	fields                         string
}

// listPage is one page of a listing.
type listPage struct {
	Items    []object `json:"items"`
	Prefixes []string `json:"prefixes"`
	Next     string   `json:"nextPageToken"`
}

// list reads one page of at most max entries (GCS's own page size when
// max is 0), continuing a listing from token when it is not empty.
func (d *Driver) list(ctx context.Context, q listQuery, token string, max int) (listPage, error) {
	v := url.Values{"prefix": {q.prefix}}
	if q.delimiter != "" {
		v.Set("delimiter", q.delimiter)
	}
	if q.startOffset != "" {
		v.Set("startOffset", q.startOffset)
	}
	if q.fields != "" {
		v.Set("fields", "nextPageToken,prefixes,items("+q.fields+")")
	}
	if max > 0 {
		v.Set("maxResults", strconv.Itoa(max))
	}
	if token != "" {
		v.Set("pageToken", token)
	}
	u := d.apiBase + "/o?" + v.Encode()
	var p listPage
	err := d.retry(ctx, func() error {
		p = listPage{}
		return d.do(ctx, "list", http.MethodGet, u, nil, &p)
	})
	return p, err
}

// pages yields the pages of a listing in order, each read with at most
// *size entries as it is when the page is asked for (GCS's own page size
// when 0), until the listing ends, a read fails (yielded with the error)
// or the loop stops. A page may be empty and still not the last.
func (d *Driver) pages(ctx context.Context, q listQuery, size *int) iter.Seq2[listPage, error] {
	return func(yield func(listPage, error) bool) {
		token := ""
		for {
			p, err := d.list(ctx, q, token, *size)
			if !yield(p, err) || err != nil || p.Next == "" || p.Next == token {
				return
			}
			token = p.Next
		}
	}
}

// listEach calls fn for each object of a listing, then for each prefix of
// the same page (prefix set, o empty), page after page, until the listing
// ends or fn fails.
func (d *Driver) listEach(ctx context.Context, q listQuery, fn func(o object, prefix string) error) error {
	size := 0
	for p, err := range d.pages(ctx, q, &size) {
		if err != nil {
			return err
		}
		for _, o := range p.Items {
			if err := fn(o, ""); err != nil {
				return err
			}
		}
		for _, pre := range p.Prefixes {
			if err := fn(object{}, pre); err != nil {
				return err
			}
		}
	}
	return nil
}

// objectReader streams the bytes one GET of an object answered. When the
// connection breaks mid-stream, it asks again for the rest, of the same
// generation, so a replaced object is never spliced into the old one.
type objectReader struct {
	body        io.ReadCloser
	size        int64 // the whole object's
	remain      int64 // this answer's, as opened
	generation  int64
	contentType string

	ctx  context.Context
	d    *Driver
	key  string
	pos  int64 // the offset of the next byte
	left int64 // the bytes still to come
	// tries counts the reopenings since bytes last arrived.
	tries int
	// With check, the read is of the whole object and sum runs over its
	// bytes, to be want at the end, as GCS's X-Goog-Hash says.
	check     bool
	sum, want uint32
}

// errCorruptRead is a whole object whose bytes do not have the CRC32C GCS
// gave for them.
var errCorruptRead = errors.New("gcs: read: the bytes received do not match the object's CRC32C")

func (r *objectReader) Read(p []byte) (int, error) {
	for {
		n, err := r.body.Read(p)
		r.pos += int64(n)
		r.left -= int64(n)
		if n > 0 {
			r.tries = 0
		}
		if r.check {
			r.sum = crc32.Update(r.sum, castagnoli, p[:n])
		}
		if err == io.EOF && r.left > 0 {
			err = io.ErrUnexpectedEOF
		}
		if err == io.EOF && r.check && r.sum != r.want {
			return n, errCorruptRead
		}
		switch {
		case err == nil || err == io.EOF:
			return n, err
		case n > 0:
			// What arrived first; the error comes again with the next Read.
			return n, nil
		}
		// Any failure of the stream is worth a reopening, as the client
		// library's reader made one: a cut connection shows as many
		// different errors, not all of which retryable knows. The
		// generation keeps the bytes the same object's.
		if r.generation == 0 || r.tries >= maxAttempts-1 || r.ctx.Err() != nil || errors.Is(err, http.ErrBodyReadAfterClose) {
			return n, err
		}
		r.tries++
		if berr := backoff(r.ctx, r.tries); berr != nil {
			return n, err
		}
		nr, rerr := r.d.openRange(r.ctx, r.key, r.generation, r.pos, r.left)
		if rerr != nil {
			return n, fmt.Errorf("%w (then, reading again from %d: %w)", err, r.pos, rerr)
		}
		r.body.Close()
		r.body = nr.body
	}
}

func (r *objectReader) Close() error { return r.body.Close() }

// openRange reads n bytes of the object key from off (to its end when n is
// not positive), of generation gen when gen is not 0. Opening is retried; a
// failure while the bytes stream is the reader's error.
func (d *Driver) openRange(ctx context.Context, key string, gen, off, n int64) (*objectReader, error) {
	if key == "" {
		return nil, errNoName
	}
	q := url.Values{"alt": {"media"}}
	if gen != 0 {
		q.Set("generation", strconv.FormatInt(gen, 10))
	}
	u := d.objectURL(key) + "?" + q.Encode()
	var r *objectReader
	err := d.retry(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		switch {
		case n > 0:
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
		case off > 0:
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
		}
		resp, err := d.hc.Do(req)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
			defer drain(resp)
			return answerError("read", resp)
		}
		r, err = readerOf(resp, off)
		if err != nil {
			resp.Body.Close()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	r.ctx, r.d, r.key, r.pos, r.left = ctx, d, key, off, r.remain
	return r, nil
}

// readerOf takes an object's size, generation and type from the headers of
// an answer to a GET from off.
func readerOf(resp *http.Response, off int64) (*objectReader, error) {
	r := &objectReader{body: resp.Body, contentType: resp.Header.Get("Content-Type")}
	if g := resp.Header.Get("X-Goog-Generation"); g != "" {
		v, err := strconv.ParseInt(g, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("gcs: read: X-Goog-Generation %q: %w", g, err)
		}
		r.generation = v
	}
	if resp.StatusCode == http.StatusPartialContent {
		// "bytes FIRST-LAST/SIZE"
		var first, last int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%d", &first, &last, &r.size); err != nil || first != off || last < first {
			return nil, fmt.Errorf("gcs: read from %d: answered Content-Range %q", off, resp.Header.Get("Content-Range"))
		}
		r.remain = last - first + 1
		return r, nil
	}
	// The whole object, though a range may have been asked for: GCS
	// answers so for an empty object.
	if resp.ContentLength < 0 || off > 0 {
		return nil, fmt.Errorf("gcs: read from %d: answered %d bytes without a Content-Range", off, resp.ContentLength)
	}
	r.size, r.remain = resp.ContentLength, resp.ContentLength
	r.want, r.check = hashCRC32C(resp.Header.Values("X-Goog-Hash"))
	return r, nil
}

// hashCRC32C finds the CRC32C in X-Goog-Hash ("crc32c=BASE64,
// md5=BASE64", in one header or several).
func hashCRC32C(values []string) (uint32, bool) {
	for _, v := range values {
		for h := range strings.SplitSeq(v, ",") {
			b64, ok := strings.CutPrefix(strings.TrimSpace(h), "crc32c=")
			if !ok {
				continue
			}
			b, err := base64.StdEncoding.DecodeString(b64)
			if err != nil || len(b) != 4 {
				return 0, false
			}
			return binary.BigEndian.Uint32(b), true
		}
	}
	return 0, false
}

// insert stores data at key in one multipart upload, which GCS refuses
// when the CRC32C given with it does not match; with ifNew, GCS refuses it
// with 412 if the object exists. It is not retried here.
func (d *Driver) insert(ctx context.Context, key string, data []byte, meta map[string]string, ifNew bool) error {
	sum := crc32c(data)
	res := map[string]any{"name": key, "contentType": blobContentType, "crc32c": sum}
	if meta != nil {
		res["metadata"] = meta
	}
	resJSON, err := json.Marshal(res)
	if err != nil {
		return err
	}
	// The multipart body is its head, data and a closing line, sent without
	// copying data.
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	part, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/json; charset=UTF-8"}})
	part.Write(resJSON)
	mw.CreatePart(textproto.MIMEHeader{"Content-Type": {blobContentType}})
	tail := "\r\n--" + mw.Boundary() + "--\r\n"

	q := url.Values{"uploadType": {"multipart"}}
	if ifNew {
		q.Set("ifGenerationMatch", "0")
	}
	body := func() io.ReadCloser {
		return io.NopCloser(io.MultiReader(bytes.NewReader(head.Bytes()), bytes.NewReader(data), strings.NewReader(tail)))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.uploadBase+"?"+q.Encode(), body())
	if err != nil {
		return err
	}
	req.ContentLength = int64(head.Len() + len(data) + len(tail))
	// Lets the transport send the request again when the idle connection
	// it chose turns out closed before any byte was written.
	req.GetBody = func() (io.ReadCloser, error) { return body(), nil }
	req.Header.Set("Content-Type", "multipart/related; boundary="+mw.Boundary())
	resp, err := d.hc.Do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return answerError("upload", resp)
	}
	// GCS checks the sum itself; an emulator may not.
	return checkStored("upload", resp, sum)
}

// checkStored reads the object resource an upload was answered with and
// compares the CRC32C GCS computed with want, that of the bytes sent. An
// object resource is a few KiB at most, metadata included.
func checkStored(op string, resp *http.Response, want string) error {
	var o struct {
		CRC32C string `json:"crc32c"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&o); err != nil {
		return fmt.Errorf("gcs: %s: answer: %w", op, err)
	}
	if o.CRC32C != "" && o.CRC32C != want {
		return errCorruptUpload
	}
	return nil
}

// crc32c is data's CRC32C as the JSON API writes it: base64 of the
// big-endian sum.
func crc32c(data []byte) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], crc32.Checksum(data, castagnoli))
	return base64.StdEncoding.EncodeToString(b[:])
}

// composeObject writes the concatenation of srcs (32 at most) at dst. It
// is safe to repeat: the same sources give the same object.
func (d *Driver) composeObject(ctx context.Context, dst string, srcs []string) error {
	type source struct {
		Name string `json:"name"`
	}
	req := struct {
		Sources     []source `json:"sourceObjects"`
		Destination struct {
			ContentType string `json:"contentType"`
		} `json:"destination"`
	}{Sources: make([]source, len(srcs))}
	for i, s := range srcs {
		req.Sources[i].Name = s
	}
	req.Destination.ContentType = blobContentType
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	return d.retry(ctx, func() error {
		return d.do(ctx, "compose", http.MethodPost, d.objectURL(dst)+"/compose", body, nil)
	})
}

// maxRewriteCalls bounds the calls of one copy. GCS copies at least about
// 1 GiB per call between buckets in one location; within one bucket a copy
// is one call.
const maxRewriteCalls = 10000

// copyObject copies src to dst on the server, in as many rewrite calls as
// GCS asks for. Each call is safe to repeat.
func (d *Driver) copyObject(ctx context.Context, src, dst string) error {
	u := d.objectURL(src) + "/rewriteTo/b/" + url.PathEscape(d.bucketName) + "/o/" + url.PathEscape(dst)
	body := []byte(`{"contentType":"` + blobContentType + `"}`)
	token := ""
	for range maxRewriteCalls {
		q := url.Values{}
		if token != "" {
			q.Set("rewriteToken", token)
		}
		var res struct {
			Done  bool   `json:"done"`
			Token string `json:"rewriteToken"`
		}
		err := d.retry(ctx, func() error {
			res.Done, res.Token = false, ""
			return d.do(ctx, "copy", http.MethodPost, u+"?"+q.Encode(), body, &res)
		})
		switch {
		case err != nil:
			return err
		case res.Done:
			return nil
		case res.Token == "":
			return errors.New("gcs: copy: the answer is neither done nor carries a rewrite token")
		}
		token = res.Token
	}
	return fmt.Errorf("gcs: copy: not done after %d calls", maxRewriteCalls)
}

// del deletes the object key, once.
func (d *Driver) del(ctx context.Context, key string) error {
	if key == "" {
		return errNoName
	}
	return d.do(ctx, "delete", http.MethodDelete, d.objectURL(key), nil, nil)
}
