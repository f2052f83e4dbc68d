package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago, none of them handed out before in this process. The kernel
// hands a port just closed out again (in a loop of FreePort, a repeat came
// within a hundred calls), so the servers of one test given ports by
// separate calls could share one: a Swift cluster once got the same port
// for memcached and its container server, and a Berth its debug address
// (FreeAddr in the test) and its own (FreeAddr in StartBerth). A port the
// kernel offers again is held until the set is picked, so that the next
// offer is another.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	ports := make([]int, 0, n)
	for range maxPortOffers {
		if len(ports) == n {
			return ports
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testenv: free port: %v", err)
		}
		defer l.Close()
		p := l.Addr().(*net.TCPAddr).Port
		if !handedOut.ports[p] {
			handedOut.ports[p] = true
			ports = append(ports, p)
		}
	}
	if len(ports) < n {
		t.Fatalf("testenv: %d free ports not handed out before, of %d offered", len(ports), maxPortOffers)
	}
	return ports
}

// handedOut is every port FreePorts returned in this test process.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// maxPortOffers bounds the ports FreePorts asks the kernel for in a call.
const maxPortOffers = 1000

// FreeAddrs returns n distinct "127.0.0.1:PORT" addresses (FreePorts).
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i, p := range FreePorts(t, n) {
		out[i] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	return out
}

// FreeAddr returns "127.0.0.1:PORT" for a free port.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", FreePort(t))
}

// WaitTCP waits until addr (host:port) accepts a connection, failing the
// test after timeout.
func WaitTCP(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	err := poll(timeout, nil, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		t.Fatalf("testenv: %s not accepting connections: %v", addr, err)
	}
}

// WaitHTTP waits until a GET of url gets any HTTP answer below 500 (a 401
// counts: the server is up), failing the test after timeout.
func WaitHTTP(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	if err := poll(timeout, nil, httpUp(url)); err != nil {
		t.Fatalf("testenv: %s not answering: %v", url, err)
	}
}

// httpUp returns a check that GETs url once.
func httpUp(url string) func() error {
	client := &http.Client{Timeout: 2 * time.Second}
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	}
}

// errExited is returned by poll when the process being waited for is gone.
type errExited struct{ err error }

func (e errExited) Error() string { return fmt.Sprintf("process exited: %v", e.err) }

// poll calls check until it succeeds, the timeout passes, or exited (when
// non-nil) is closed; it returns check's last error.
func poll(timeout time.Duration, exited <-chan struct{}, check func() error) error {
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = check(); err == nil {
			return nil
		}
		select {
		case <-exited:
			return errExited{err}
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
