// Package listener wraps the registry's TCP listener so that its
// connections read and write their sockets with raw system calls, which
// leave the Go runtime's monitor thread asleep.
//
// Why: the monitor (sysmon) sleeps for as long as every processor is
// idle, and a system call's entry or return wakes it (runtime/proc.go,
// reentersyscall and exitsyscall). Woken so, it polls every 20 µs (about
// 70 µs with the kernel's timer slack) for some 50 rounds, and for as
// long as any processor is busy: two futex calls and a few sleeps for each
// wake-up, some 30–60 µs of CPU in a virtual machine. A client that sends
// its body in pieces as it makes them, as docker push does (a 32 KiB chunk
// about every millisecond, as fast as it compresses the layer), makes
// every piece such a wake-up: the monitor was a fifth of the registry's
// CPU in a docker push. The sockets are non-blocking, so a read or a write
// on one returns at once, data or EAGAIN; it needs nothing of what the
// runtime does around a call that may block (handing the processor to
// another thread while it waits), and the waiting itself is the network
// poller's, as before. Reads and writes larger than rawMax stay ordinary
// system calls. Everything else about the connection (deadlines,
// sendfile, TLS above it, close) is the *net.TCPConn's own.
//
// Built with the race detector, msan or asan, the calls are the syscall
// package's, which tell those tools what the kernel wrote (rawio_race.go).
package listener

import (
	"io"
	"net"
	"os"
	"syscall"
)

// Wrap returns ln with its TCP connections reading and writing raw. Other
// connections (a Unix socket) come out of Accept as they are.
func Wrap(ln net.Listener) net.Listener { return &listener{ln} }

type listener struct{ net.Listener }

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c, nil
	}
	return &conn{TCPConn: tc, raw: raw}, nil
}

// rawMax is the largest read or write made raw. A larger one copies for
// tens of microseconds (a 256 KiB read of a body streaming in), long
// enough that the runtime should be free to hand the processor to another
// goroutine meanwhile, as it does for a system call. Made raw, those
// larger reads raised the registry's peak memory by 3 MiB with 8
// concurrent 1 GiB pushes (row 9; how, not traced). The pieces of a
// paced body (docker's 32 KiB chunks, read through net/http's 4 KiB
// buffer and then directly) are below it.
const rawMax = 64 << 10

// conn is a TCP connection whose Read and Write are raw system calls on
// its non-blocking socket, waiting for it through the network poller
// (syscall.RawConn) when it has nothing to give or no room. Its other
// methods, ReadFrom (sendfile) among them, are the *net.TCPConn's.
type conn struct {
	*net.TCPConn
	raw syscall.RawConn
}

func (c *conn) Read(p []byte) (int, error) {
	if len(p) == 0 || len(p) > rawMax {
		return c.TCPConn.Read(p)
	}
	var n int
	var errno syscall.Errno
	err := c.raw.Read(func(fd uintptr) bool {
		n, errno = rawIO(syscall.SYS_READ, fd, p)
		// On EAGAIN the poller waits for the socket to become readable;
		// anything else, data or an error, is the answer.
		return errno != syscall.EAGAIN
	})
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of p, or fails. It holds the socket's write lock
// throughout, as net's Write does, so that two writers' bytes never
// interleave: a socket with room for part of p takes that part, and the
// rest waits for room in the same call.
func (c *conn) Write(p []byte) (int, error) {
	if len(p) == 0 || len(p) > rawMax {
		return c.TCPConn.Write(p)
	}
	done := 0
	var errno syscall.Errno
	short := false
	err := c.raw.Write(func(fd uintptr) bool {
		for done < len(p) {
			n, e := rawIO(syscall.SYS_WRITE, fd, p[done:])
			switch {
			case e == syscall.EAGAIN:
				return false
			case e != 0:
				errno = e
				return true
			case n == 0:
				// write(2) took nothing and said nothing: net reports it
				// so, never seen on a socket.
				short = true
				return true
			}
			done += n
		}
		return true
	})
	switch {
	case err != nil:
		return done, c.opError("write", err)
	case errno != 0:
		return done, c.opError("write", os.NewSyscallError("write", errno))
	case short:
		return done, c.opError("write", io.ErrUnexpectedEOF)
	}
	return done, nil
}

// opError is err as net's own Read and Write report it: a *net.OpError
// whose Op is op (the raw connection's says "raw-read"), so deadline,
// closed-connection and reset errors read as they always did.
func (c *conn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		e := *oe
		e.Op = op
		return &e
	}
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
