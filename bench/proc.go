package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// proc is a helper process of the harness (an object store, its shaping
// proxy, the round-robin front, Redis), started as the leader of its own
// process group so that stopping it ends whatever it started, with its
// output in a log file of its own.
type proc struct {
	cmd *exec.Cmd
	// done is closed once the process was waited for and its log closed.
	done chan struct{}
}

// startProc starts cmd with its output in the file logPath; name says
// what it is in the error.
func startProc(name string, cmd *exec.Cmd, logPath string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

// stop ends the process group and waits for it (stopGroup).
func (p *proc) stop() { stopGroup(p.cmd, p.done) }
