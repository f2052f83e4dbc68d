package testenv

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// logTail bounds how much of a process log is printed when a test fails.
const logTail = 64 << 10

// stopGrace is how long a process gets to exit after SIGTERM before its
// whole process group is killed.
const stopGrace = 5 * time.Second

// Process is a program started by StartProcess. It is stopped, with its
// children, when the test ends.
type Process struct {
	Cmd     *exec.Cmd
	LogPath string // stdout and stderr, interleaved

	done chan struct{}
	err  error // Cmd.Wait's result; read it only after done is closed
}

// StartProcess starts name (a path or a command on PATH) with args, with
// env added to the test's environment, in a fresh temporary directory that
// also holds its log. When the test ends the process group gets SIGTERM,
// then SIGKILL after a grace period; when the test failed the tail of the
// log is printed.
func StartProcess(t testing.TB, name string, args, env []string) *Process {
	t.Helper()
	dir := t.TempDir()
	logPath := filepath.Join(dir, filepath.Base(name)+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("testenv: start %s: %v", name, err)
	}
	p := &Process{Cmd: cmd, LogPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("testenv: log of %s %q (%s):\n%s", name, args, p.LogPath, p.Log())
		}
	})
	return p
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the process's exit error; call it only after Done is closed.
func (p *Process) Err() error { return p.err }

// Log returns the last part of the process's output.
func (p *Process) Log() string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > logTail {
		if _, err := f.Seek(-logTail, io.SeekEnd); err != nil {
			return fmt.Sprintf("(log unreadable: %v)", err)
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	return string(b)
}

// WaitLogLine waits until a line of the process's log contains every one
// of parts, and returns the log up to then. Berth writes its access log in
// batches, a few milliseconds after the request.
func (p *Process) WaitLogLine(t testing.TB, timeout time.Duration, parts ...string) string {
	t.Helper()
	var log string
	err := poll(timeout, p.done, func() error {
		log = p.Log()
		for _, line := range strings.Split(log, "\n") {
			if containsAll(line, parts) {
				return nil
			}
		}
		return fmt.Errorf("no line with all of %q", parts)
	})
	if err != nil {
		t.Fatalf("testenv: log of %s: %v\n%s", p.Cmd.Path, err, log)
	}
	return log
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// WaitHTTP waits until a GET of url gets an answer below 500, failing the
// test at once, with the log, if the process exits first.
func (p *Process) WaitHTTP(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	if err := poll(timeout, p.done, httpUp(url)); err != nil {
		t.Fatalf("testenv: %s not answering: %v\nlog of %s:\n%s", url, err, p.Cmd.Path, p.Log())
	}
}

// stop ends the process group: SIGTERM, then SIGKILL after stopGrace.
func (p *Process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	terminate(p.Cmd)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		kill(p.Cmd)
		<-p.done
	}
}

// Stop ends the process now, as the test's end would: for tests of what
// happens when a server goes away.
func (p *Process) Stop() { p.stop() }

// FullLog returns the whole of the process's output so far.
func (p *Process) FullLog() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return ""
	}
	return string(b)
}
