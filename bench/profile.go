package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// debugAddr is the http.debug.addr of server s: Berth serves pprof there
// when profiles are asked for.
func (h *harness) debugAddr(s int) string {
	if h.profileDir == "" || h.specs[s].name != "berth" {
		return ""
	}
	addr, err := freeAddr()
	if err != nil {
		return ""
	}
	return addr
}

// startProfile takes a CPU profile of Berth's first measurement of a
// scenario (for up to the load duration, or 10 s) and, when the returned
// function is called, its allocation profile.
func (h *harness) startProfile(ctx context.Context, idx, round, s int, srv *server) func() {
	if h.profileDir == "" || round != 0 || h.specs[s].name != "berth" {
		return func() {}
	}
	debug := srv.debug
	if debug == "" {
		return func() {}
	}
	secs := max(int(h.sz.load.Seconds()), 1)
	if h.sz.load < 10*time.Second {
		secs = 10
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", debug, secs),
			filepath.Join(h.profileDir, fmt.Sprintf("s%d-cpu.pprof", idx+1)))
	}()
	return func() {
		fetch(ctx, "http://"+debug+"/debug/pprof/allocs", filepath.Join(h.profileDir, fmt.Sprintf("s%d-allocs.pprof", idx+1)))
		<-done
	}
}

func fetch(ctx context.Context, url, path string) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}
