package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
)

// client speaks the distribution API to one server. Both servers get the
// same client, so its costs (it shares the CPUs) weigh on both alike.
type client struct {
	hc   *http.Client
	base *url.URL
}

func newClient(base string, conns int) *client {
	u, err := url.Parse(base)
	if err != nil {
		panic(err) // base is built by the harness
	}
	return &client{
		base: u,
		hc: &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        conns * 2,
			MaxIdleConnsPerHost: conns * 2,
			DisableCompression:  true,
			ReadBufferSize:      256 << 10,
			WriteBufferSize:     256 << 10,
			IdleConnTimeout:     time.Minute,
		}},
	}
}

func (c *client) close() { c.hc.CloseIdleConnections() }

func (c *client) url(path string) string { return c.base.String() + path }

// do sends req and checks the status is want; the body is drained and
// closed. It returns the response (body consumed) and the bytes read.
func (c *client) do(req *http.Request, want int) (*http.Response, int64, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	var n int64
	if resp.StatusCode == want {
		n, err = copyDiscard(resp.Body)
		if err != nil {
			return nil, n, fmt.Errorf("%s %s: reading body: %w", req.Method, req.URL.Path, err)
		}
		return resp, n, nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return nil, 0, fmt.Errorf("%s %s: status %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, b)
}

var discardBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// copyDiscard reads r to the end with a large buffer, so that the client
// spends little CPU per byte of a big pull.
func copyDiscard(r io.Reader) (int64, error) {
	bp := discardBufs.Get().(*[]byte)
	defer discardBufs.Put(bp)
	var n int64
	for {
		m, err := r.Read(*bp)
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// resolve turns a Location header into an absolute URL with the query
// parameters q added.
func (c *client) resolve(loc string, q url.Values) (string, error) {
	u, err := c.base.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("bad Location %q: %w", loc, err)
	}
	v := u.Query()
	for k, vs := range q {
		v[k] = vs
	}
	u.RawQuery = v.Encode()
	return u.String(), nil
}

// startUpload opens an upload session and returns its Location.
func (c *client) startUpload(ctx context.Context, repo string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url("/v2/"+repo+"/blobs/uploads/"), nil)
	if err != nil {
		return "", err
	}
	resp, _, err := c.do(req, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	return resp.Header.Get("Location"), nil
}

// pushBlob uploads size bytes of body as d: POST, then one PUT with the
// whole body (the spec's monolithic upload).
func (c *client) pushBlob(ctx context.Context, repo string, d digest.Digest, body io.Reader, size int64) error {
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	u, err := c.resolve(loc, url.Values{"digest": {d.String()}})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	_, _, err = c.do(req, http.StatusCreated)
	return err
}

// pushChunked uploads size bytes of r as d: POST, a PATCH per chunk with
// its Content-Range, then a PUT without a body.
func (c *client) pushChunked(ctx context.Context, repo string, d digest.Digest, r io.ReaderAt, size, chunk int64) error {
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	for off := int64(0); off < size; off += chunk {
		n := min(chunk, size-off)
		u, err := c.resolve(loc, nil)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPatch, u, io.NewSectionReader(r, off, n))
		if err != nil {
			return err
		}
		req.ContentLength = n
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(off+n-1, 10))
		resp, _, err := c.do(req, http.StatusAccepted)
		if err != nil {
			return err
		}
		loc = resp.Header.Get("Location")
	}
	u, err := c.resolve(loc, url.Values{"digest": {d.String()}})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, nil)
	if err != nil {
		return err
	}
	_, _, err = c.do(req, http.StatusCreated)
	return err
}

// pushBytes uploads b monolithically and returns its digest.
func (c *client) pushBytes(ctx context.Context, repo string, b []byte) (digest.Digest, error) {
	d := digest.FromBytes(b)
	return d, c.pushBlob(ctx, repo, d, bytes.NewReader(b), int64(len(b)))
}

// putManifest stores payload under ref.
func (c *client) putManifest(ctx context.Context, repo, ref, mediaType string, payload []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.url("/v2/"+repo+"/manifests/"+ref), bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mediaType)
	_, _, err = c.do(req, http.StatusCreated)
	return err
}

// load is what one hammer run measured.
type load struct {
	rps float64
	// serverCPU and clientCPU are the CPU time (user and system) the
	// server process and the load generator spent per request. Both share
	// the machine's cores, so the ratio of requests per second between two
	// servers is bounded by the client's share; the server's CPU per
	// request is its cost alone.
	serverCPU, clientCPU time.Duration
}

// hammer runs conns workers that each call do in a loop until d has
// passed, after a short warm-up that opens the connections. serverCPU
// reads the server's total CPU time so far.
func hammer(ctx context.Context, conns int, d time.Duration, serverCPU func() (time.Duration, error), do func(ctx context.Context, worker int) error) (load, error) {
	run := func(d time.Duration) (int64, time.Duration, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var n atomic.Int64
		var firstErr error
		var once sync.Once
		var wg sync.WaitGroup
		start := time.Now()
		deadline := start.Add(d)
		for w := range conns {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					if err := do(ctx, w); err != nil {
						once.Do(func() { firstErr = err; cancel() })
						return
					}
					n.Add(1)
				}
			})
		}
		wg.Wait()
		return n.Load(), time.Since(start), firstErr
	}
	if _, _, err := run(d / 10); err != nil {
		return load{}, err
	}
	server0, err := serverCPU()
	if err != nil {
		return load{}, err
	}
	client0 := selfCPU()
	n, el, err := run(d)
	if err != nil {
		return load{}, err
	}
	server1, err := serverCPU()
	if err != nil {
		return load{}, err
	}
	client1 := selfCPU()
	if n == 0 {
		return load{}, errors.New("no request completed")
	}
	return load{
		rps:       float64(n) / el.Seconds(),
		serverCPU: (server1 - server0) / time.Duration(n),
		clientCPU: (client1 - client0) / time.Duration(n),
	}, nil
}

// selfCPU is the CPU time this process has used so far.
func selfCPU() time.Duration { return rusageCPU(syscall.RUSAGE_SELF) }

// childrenCPU is the CPU time of the children this process has waited for.
func childrenCPU() time.Duration { return rusageCPU(syscall.RUSAGE_CHILDREN) }

// rusageCPU is getrusage's user plus system time for who, 0 if it fails.
func rusageCPU(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bigBlob is a large random file on the work disk, and the running
// sha256 state over it, so that variants (the file plus a short distinct
// suffix) give distinct blobs of the same size without rehashing it.
type bigBlob struct {
	f     *os.File
	size  int64
	state []byte // marshalled sha256 after the file's bytes
}

// variant is bigBlob's file followed by a suffix that makes it a blob of
// its own.
type variant struct {
	b      *bigBlob
	suffix []byte
	d      digest.Digest
}

func newBigBlob(dir string, size int64) (*bigBlob, error) {
	f, err := os.CreateTemp(dir, "blob-")
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name()) // gone when the harness exits
	h := sha256.New()
	rng := rand.NewChaCha8([32]byte{'b', 'e', 'r', 't', 'h'})
	buf := make([]byte, 4<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		p := buf[:min(int64(len(buf)), size-off)]
		_, _ = rng.Read(p)
		h.Write(p)
		if _, err := f.Write(p); err != nil {
			f.Close()
			return nil, err
		}
	}
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &bigBlob{f: f, size: size, state: state}, nil
}

// variant returns the blob's variant number i.
func (b *bigBlob) variant(i int) *variant {
	suffix := []byte(fmt.Sprintf("%015d\n", i))
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(b.state); err != nil {
		panic(err) // the state was marshalled by the same package
	}
	h.Write(suffix)
	return &variant{b: b, suffix: suffix, d: digest.NewDigest(digest.SHA256, h)}
}

func (v *variant) size() int64 { return v.b.size + int64(len(v.suffix)) }

func (v *variant) ReadAt(p []byte, off int64) (int, error) {
	var n int
	if off < v.b.size {
		m, err := v.b.f.ReadAt(p[:min(int64(len(p)), v.b.size-off)], off)
		n += m
		if err != nil && err != io.EOF {
			return n, err
		}
		off += int64(m)
		p = p[m:]
	}
	if len(p) > 0 && off >= v.b.size {
		m := copy(p, v.suffix[min(off-v.b.size, int64(len(v.suffix))):])
		n += m
		if m < len(p) {
			return n, io.EOF
		}
	}
	return n, nil
}

func (v *variant) reader() io.Reader { return io.NewSectionReader(v, 0, v.size()) }

// randomBytes returns n pseudo-random bytes, distinct for each seed.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	var key [32]byte
	copy(key[:], strconv.FormatUint(seed, 10))
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}
