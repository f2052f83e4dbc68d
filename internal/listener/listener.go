// Package listener wraps the registry's TCP listener so that its
// connections read and write their sockets with raw system calls, which
// leave the Go runtime's monitor thread asleep.
//
// Why: the runtime wakes its monitor (sysmon) at the first system call
// made after every processor was idle, and the monitor then polls every
// 20 µs (about 70 µs with the kernel's timer slack) until they are all
// idle again: two futex calls and a few sleeps for each wake-up, some
// 30–60 µs of CPU in a virtual machine. A client that sends its body in
// pieces as it makes them, as docker push does (a 32 KiB chunk about
// every millisecond, as fast as it compresses the layer), makes every
// piece such a wake-up: the monitor was a fifth of the registry's CPU in
// a docker push. The sockets are non-blocking, so a read or a write on
// one returns at once, data or EAGAIN; it needs nothing of what the
// runtime does around a call that may block (handing the processor to
// another thread while it waits), and the waiting itself is the network
// poller's, as before. Everything else about the connection (deadlines,
// sendfile, TLS above it, close) is the *net.TCPConn's own.
package listener

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
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

// conn is a TCP connection whose Read and Write are raw system calls on
// its non-blocking socket, waiting for it through the network poller
// (syscall.RawConn) when it has nothing to give or no room. Its other
// methods, ReadFrom (sendfile) among them, are the *net.TCPConn's.
type conn struct {
	*net.TCPConn
	raw syscall.RawConn
}

func (c *conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
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

// Write writes all of p, or fails; a socket with room for part of it
// takes that part, and the rest waits for room.
func (c *conn) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		var n int
		var errno syscall.Errno
		err := c.raw.Write(func(fd uintptr) bool {
			n, errno = rawIO(syscall.SYS_WRITE, fd, p[done:])
			return errno != syscall.EAGAIN
		})
		switch {
		case err != nil:
			return done, c.opError("write", err)
		case errno != 0:
			return done, c.opError("write", os.NewSyscallError("write", errno))
		}
		done += n
	}
	return done, nil
}

// rawIO reads into or writes from p with one raw system call, retrying
// one a signal interrupted: the poller, which is edge-triggered, would
// not wake for bytes already there.
func rawIO(trap uintptr, fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		r, _, errno := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(r), 0
	}
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
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
