package listener_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/listener"
)

// serve runs h on a wrapped loopback listener until the test ends.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(listener.Wrap(ln))
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// answer is larger than loopback's socket buffers on both sides, so that
// a write of it finds the socket full.
const answer = 32 << 20

// TestBodiesThroughRawConnections sends bodies as docker sends a layer (a
// chunked body written in small pieces with pauses, so that the server's
// reads find the socket empty and wait) and as one large write, and has
// the server answer with large bodies, written faster than the client
// reads them, so that its writes find the socket full and wait: every
// byte must arrive, in order.
func TestBodiesThroughRawConnections(t *testing.T) {
	url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.URL.Query().Get("answer") != "" {
			w.Write(bytes.Repeat([]byte{0x5a}, answer))
			return
		}
		fmt.Fprintf(w, "%d %s", n, hex.EncodeToString(h.Sum(nil)))
	}))
	body := make([]byte, 3<<20+17)
	for i := range body {
		body[i] = byte(i * 7)
	}
	sum := sha256.Sum256(body)
	want := fmt.Sprintf("%d %s", len(body), hex.EncodeToString(sum[:]))

	for _, tc := range []struct {
		name  string
		piece int
		pause time.Duration
	}{
		{"paced pieces", 32 << 10, time.Millisecond},
		{"tiny pieces", 1000, 0},
		{"one write", len(body), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			go func() {
				for off := 0; off < len(body); off += tc.piece {
					if _, err := pw.Write(body[off:min(off+tc.piece, len(body))]); err != nil {
						return
					}
					time.Sleep(tc.pause)
				}
				pw.Close()
			}()
			resp, err := http.Post(url, "application/octet-stream", pr)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(got) != want {
				t.Fatalf("server got %q; want %q", got, want)
			}
		})
	}

	t.Run("large answer, slow reader", func(t *testing.T) {
		resp, err := http.Post(url+"?answer=1", "text/plain", bytes.NewReader([]byte("x")))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		time.Sleep(50 * time.Millisecond) // the server's write fills the socket
		got, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{0x5a}, answer)) {
			t.Fatalf("answer of %d bytes, err %v; want %d bytes of 0x5a", len(got), err, answer)
		}
	})
}

// TestRawConnections: a write into a socket with room for part of it is
// written whole, and two writers' bytes never interleave; a Close ends a
// waiting read; a peer's close reads as io.EOF, a reset and a write to a
// closed peer as the errno net reports, a passed deadline as a timeout, a
// closed connection as net.ErrClosed.
func TestRawConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wrapped := listener.Wrap(ln)
	t.Cleanup(func() { wrapped.Close() })
	pair := func(t *testing.T) (server net.Conn, client *net.TCPConn) {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := wrapped.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(); c.Close() })
		if _, ok := s.(*net.TCPConn); ok {
			t.Fatal("Accept gave the TCP connection unwrapped")
		}
		if _, ok := s.(io.ReaderFrom); !ok {
			t.Fatal("wrapped connection lost ReadFrom (sendfile)")
		}
		return s, c.(*net.TCPConn)
	}
	buf := make([]byte, 64)

	t.Run("peer closes", func(t *testing.T) {
		s, c := pair(t)
		c.Write([]byte("last words"))
		c.Close()
		got, err := io.ReadAll(s)
		if err != nil || string(got) != "last words" {
			t.Fatalf("read %q, %v; want the bytes, then io.EOF", got, err)
		}
		if n, err := s.Read(buf); n != 0 || err != io.EOF {
			t.Fatalf("read after EOF: %d, %v; want io.EOF", n, err)
		}
	})
	t.Run("peer resets", func(t *testing.T) {
		s, c := pair(t)
		c.SetLinger(0)
		c.Close()
		s.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := s.Read(buf)
		var oe *net.OpError
		if !errors.Is(err, syscall.ECONNRESET) || !errors.As(err, &oe) || oe.Op != "read" {
			t.Fatalf("read after reset: %v; want a read *net.OpError with ECONNRESET", err)
		}
		// Writing to the reset socket fails, without killing the process
		// with SIGPIPE.
		var werr error
		for range 10 {
			if _, werr = s.Write([]byte("anyone?")); werr != nil {
				break
			}
		}
		if !errors.Is(werr, syscall.EPIPE) && !errors.Is(werr, syscall.ECONNRESET) {
			t.Fatalf("write after reset: %v; want EPIPE or ECONNRESET", werr)
		}
	})
	// piece is the largest write made raw: a socket nearly full takes
	// part of one, and the rest must wait for room in the same Write.
	const piece = 64 << 10
	t.Run("writes into a full socket", func(t *testing.T) {
		s, c := pair(t)
		p := bytes.Repeat([]byte{0xa5}, piece)
		done := make(chan error, 1)
		go func() {
			defer s.Close()
			for range answer / piece {
				if n, err := s.Write(p); n != piece || err != nil {
					done <- fmt.Errorf("Write returned %d, %v; want all %d bytes", n, err, piece)
					return
				}
			}
			done <- nil
		}()
		time.Sleep(50 * time.Millisecond) // the writes fill the socket
		got, err := io.ReadAll(c)
		if werr := <-done; werr != nil {
			t.Fatal(werr)
		}
		if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{0xa5}, answer)) {
			t.Fatalf("peer read %d bytes, %v; want the %d written", len(got), err, answer)
		}
	})
	t.Run("two writers", func(t *testing.T) {
		// Each Write lands whole, never interleaved with the other's,
		// even when the socket takes it in parts: every piece-sized block
		// of the stream is one writer's.
		s, c := pair(t)
		done := make(chan error, 2)
		for _, b := range []byte{'a', 'b'} {
			go func() {
				p := bytes.Repeat([]byte{b}, piece)
				for range answer / piece / 2 {
					if _, err := s.Write(p); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
		}
		go func() {
			for range 2 {
				if err := <-done; err != nil {
					t.Error(err)
				}
			}
			s.Close()
		}()
		time.Sleep(50 * time.Millisecond) // both fill the socket
		got, err := io.ReadAll(c)
		if err != nil || len(got) != answer {
			t.Fatalf("peer read %d bytes, %v; want %d", len(got), err, answer)
		}
		for off := 0; off < len(got); off += piece {
			block := got[off : off+piece]
			if !bytes.Equal(block, bytes.Repeat(block[:1], piece)) {
				t.Fatalf("the two writers' bytes interleaved in the block at %d", off)
			}
		}
	})
	t.Run("close during a read", func(t *testing.T) {
		s, _ := pair(t)
		errc := make(chan error, 1)
		go func() {
			_, err := s.Read(buf)
			errc <- err
		}()
		time.Sleep(20 * time.Millisecond) // the read waits in the poller
		s.Close()
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read cut by Close: %v; want net.ErrClosed", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		s, _ := pair(t)
		s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := s.Read(buf)
		var ne net.Error
		var oe *net.OpError
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() || !errors.As(err, &oe) || oe.Op != "read" {
			t.Fatalf("read past the deadline: %v; want a read timeout", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		s, _ := pair(t)
		s.Close()
		if _, err := s.Read(buf); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read on a closed connection: %v; want net.ErrClosed", err)
		}
		if _, err := s.Write(buf); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write on a closed connection: %v; want net.ErrClosed", err)
		}
	})
}

// TestUnixConnectionsPassThrough: only TCP connections are wrapped.
func TestUnixConnectionsPassThrough(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	wrapped := listener.Wrap(ln)
	defer wrapped.Close()
	go func() {
		if c, err := net.Dial("unix", path); err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	s, err := wrapped.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*net.UnixConn); !ok {
		t.Fatalf("unix connection came out as %T", s)
	}
}
