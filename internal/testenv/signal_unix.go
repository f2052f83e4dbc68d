//go:build unix

package testenv

import (
	"syscall"
	"testing"
	"time"
)

// Crash kills the process group at once (SIGKILL), as a crash or an
// out-of-memory kill would: nothing is flushed, nothing is released. It
// returns once the process has exited.
func (p *Process) Crash(t testing.TB) {
	t.Helper()
	kill(p.Cmd)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("testenv: %s still running 30s after SIGKILL", p.Cmd.Path)
	}
}

// Freeze stops the process group (SIGSTOP), as a paused VM or a process
// starved of CPU would be: its clocks run on, it does nothing. Thaw
// resumes it; a process still frozen when the test ends is thawed first,
// so that it can be stopped.
func (p *Process) Freeze(t testing.TB) {
	t.Helper()
	if err := syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("testenv: SIGSTOP: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGCONT) })
}

// Thaw resumes a frozen process (SIGCONT).
func (p *Process) Thaw(t testing.TB) {
	t.Helper()
	if err := syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGCONT); err != nil {
		t.Fatalf("testenv: SIGCONT: %v", err)
	}
}
