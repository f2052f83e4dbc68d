package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// rawConn is one keep-alive HTTP/1.1 connection that sends a fixed
// request and reads the response with as little work as it can, as wrk
// does: on a machine shared by client and server, a heavy client (net/http
// costs several times what a registry spends on a HEAD) would cap both
// servers at the client's speed and hide the difference between them.
type rawConn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
}

func dialRaw(ctx context.Context, addr string) (*rawConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &rawConn{addr: addr, c: c, br: bufio.NewReaderSize(c, 64<<10)}, nil
}

func (r *rawConn) Close() error { return r.c.Close() }

// request builds the bytes of a request for path on addr.
func rawRequest(method, addr, path string, hdr ...string) []byte {
	var b strings.Builder
	b.WriteString(method + " " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: berth-bench\r\n")
	for _, h := range hdr {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// do sends req and reads the response head; it returns the status and
// the Content-Length (-1 when absent). The body is the caller's to read
// (see discard) unless head is set.
func (r *rawConn) do(req []byte) (status int, length int64, err error) {
	if _, err := r.c.Write(req); err != nil {
		return 0, 0, err
	}
	line, err := r.br.ReadSlice('\n')
	if err != nil {
		return 0, 0, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || string(line[:5]) != "HTTP/" {
		return 0, 0, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, 0, fmt.Errorf("bad status line %q", line)
	}
	length = -1
	for {
		line, err := r.br.ReadSlice('\n')
		if err != nil {
			return 0, 0, err
		}
		if len(line) <= 2 {
			return status, length, nil
		}
		k, v, ok := strings.Cut(string(line), ":")
		if !ok {
			continue
		}
		switch {
		case strings.EqualFold(k, "Content-Length"):
			if length, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
				return 0, 0, fmt.Errorf("bad Content-Length %q", v)
			}
		case strings.EqualFold(k, "Transfer-Encoding"):
			return 0, 0, errors.New("chunked responses are not supported by the load generator")
		}
	}
}

// discard reads n bytes of body. Large bodies are spliced to /dev/null,
// so the client copies nothing.
func (r *rawConn) discard(n int64, devNull *os.File) error {
	if buffered := int64(r.br.Buffered()); buffered > 0 {
		k := min(buffered, n)
		if _, err := r.br.Discard(int(k)); err != nil {
			return err
		}
		n -= k
	}
	if n == 0 {
		return nil
	}
	if devNull != nil {
		m, err := io.Copy(devNull, io.LimitReader(r.c, n))
		if err == nil && m != n {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	_, err := r.br.Discard(int(n))
	return err
}

// rawHammer is hammer over raw connections to s: each worker sends reqs
// in turn and checks for a 200 with a body of want bytes (want < 0: any;
// head: no body).
func rawHammer(ctx context.Context, s *server, conns int, d time.Duration, reqs [][]byte, head bool, want int64) (load, error) {
	pool := make([]*rawConn, conns)
	defer func() {
		for _, c := range pool {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range pool {
		c, err := dialRaw(ctx, s.addr)
		if err != nil {
			return load{}, err
		}
		pool[i] = c
	}
	counts := make([]int, conns)
	return hammer(ctx, conns, d, s.cpu, func(ctx context.Context, w int) error {
		c := pool[w]
		counts[w]++
		status, n, err := c.do(reqs[counts[w]%len(reqs)])
		if err != nil {
			return err
		}
		if status != 200 {
			return fmt.Errorf("status %d", status)
		}
		if head {
			return nil
		}
		if n < 0 || (want >= 0 && n != want) {
			return fmt.Errorf("Content-Length %d, want %d", n, want)
		}
		return c.discard(n, nil)
	})
}

// rawPull GETs path once and returns the body's size, spliced away.
func rawPull(ctx context.Context, addr, path string, devNull *os.File) (int64, error) {
	c, err := dialRaw(ctx, addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	status, n, err := c.do(rawRequest("GET", addr, path))
	if err != nil {
		return 0, err
	}
	if status != 200 || n < 0 {
		return 0, fmt.Errorf("GET %s: status %d, Content-Length %d", path, status, n)
	}
	return n, c.discard(n, devNull)
}
