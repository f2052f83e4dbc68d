package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/config"
)

func TestCommandsExitCodesAndOutput(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	writeFile(t, good, `version: 0.1
storage:
  filesystem:
    rootdirectory: `+filepath.Join(dir, "root")+`
http:
  addr: 127.0.0.1:0
  secret: hunter2
`)
	badKey := filepath.Join(dir, "bad.yml")
	writeFile(t, badKey, "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /x\n    colour: blue\n")
	tests := []struct {
		name     string
		args     []string
		env      []string
		code     int
		stdout   []string
		stderr   []string
		noStdout []string
	}{
		{name: "no args prints usage", args: nil, code: 2, stderr: []string{"usage: berth"}},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: []string{`unknown command "frobnicate"`}},
		{name: "version", args: []string{"version"}, code: 0, stdout: []string{"berth ", "storage drivers: azure, filesystem, gcs, inmemory, s3, swift\n"}},
		{name: "config check redacts secrets", args: []string{"config", "check", good}, code: 0,
			stdout: []string{"rootdirectory: " + filepath.Join(dir, "root"), "<redacted>"}, noStdout: []string{"hunter2"}},
		{name: "config check applies env overrides", args: []string{"config", "check", good},
			env: []string{"REGISTRY_HTTP_ADDR=127.0.0.1:6001"}, code: 0, stdout: []string{"127.0.0.1:6001"}},
		{name: "config check names a bad driver key", args: []string{"config", "check", badKey}, code: 1,
			stderr: []string{"storage.filesystem", "colour"}},
		{name: "config check missing file", args: []string{"config", "check", filepath.Join(dir, "nope.yml")}, code: 1,
			stderr: []string{"nope.yml"}},
		{name: "serve refuses two files", args: []string{"serve", good, good}, code: 1, stderr: []string{"at most one config file"}},
		{name: "garbage-collect needs a config", args: []string{"garbage-collect"}, code: 1, stderr: []string{"usage: berth garbage-collect"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr, tt.env)
			if code != tt.code {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
			for _, s := range tt.noStdout {
				if strings.Contains(stdout.String(), s) {
					t.Errorf("stdout shows %q:\n%s", s, stdout.String())
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
				}
			}
		})
	}
}

// TestServeDefaultConfigAndGracefulShutdown runs the embedded default config
// (its root made absolute by an override) and checks that a request still
// running when the shutdown signal arrives is allowed to finish.
func TestServeDefaultConfigAndGracefulShutdown(t *testing.T) {
	addr := freeAddr(t)
	env := []string{
		"REGISTRY_HTTP_ADDR=" + addr,
		"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=" + t.TempDir(),
		"REGISTRY_HTTP_DRAINTIMEOUT=20s",
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr syncBuffer
	go func() { done <- run(ctx, []string{"serve"}, io.Discard, &stderr, env) }()
	base := "http://" + addr
	waitUp(t, base+"/v2/")

	// Start an upload and stream its body slowly: the shutdown must wait.
	resp, err := http.Post(base+"/v2/team/app/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || loc == "" {
		t.Fatalf("POST upload: %d, Location %q", resp.StatusCode, loc)
	}
	if !strings.HasPrefix(loc, "http") {
		loc = base + loc
	}
	pr, pw := io.Pipe()
	patched := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPatch, loc, pr)
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			patched <- -1
			return
		}
		resp.Body.Close()
		patched <- resp.StatusCode
	}()
	if _, err := pw.Write([]byte("first half,")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the request reach the handler
	cancel()
	time.Sleep(200 * time.Millisecond) // shutdown has begun; the PATCH is still open
	if _, err := pw.Write([]byte(" second half")); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if code := <-patched; code != http.StatusAccepted {
		t.Fatalf("in-flight PATCH during shutdown: status %d, want 202", code)
	}
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d; log:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Errorf("log lacks the shutdown line:\n%s", stderr.String())
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitUp(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 within 10s", url)
}

// syncBuffer is a bytes.Buffer safe for the server's log goroutines.
type syncBuffer struct {
	mu  chanMutex
	buf bytes.Buffer
}

type chanMutex chan struct{}

func (b *syncBuffer) lock() {
	if b.mu == nil {
		b.mu = make(chanMutex, 1)
	}
	b.mu <- struct{}{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.lock()
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.lock()
	defer func() { <-b.mu }()
	return fmt.Sprint(b.buf.String())
}

// TestServeExposesHealthAndMetricsOnTheDebugAddress checks the wiring:
// the debug listener serves /debug/health and Prometheus metrics that count
// the registry's requests, and the registry listener serves neither.
func TestServeExposesHealthAndMetricsOnTheDebugAddress(t *testing.T) {
	addr, debug := freeAddr(t), freeAddr(t)
	env := []string{
		"REGISTRY_HTTP_ADDR=" + addr,
		"REGISTRY_HTTP_DEBUG_ADDR=" + debug,
		"REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED=true",
		"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=" + t.TempDir(),
		"REGISTRY_POLICY_REPOSITORY_CLASSES=[image]", // no effect in Berth
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr syncBuffer
	go func() { done <- run(ctx, []string{"serve"}, io.Discard, &stderr, env) }()
	t.Cleanup(func() { cancel(); <-done })
	waitUp(t, "http://"+addr+"/v2/")
	waitUp(t, "http://"+debug+"/debug/health")

	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("http://" + debug + "/metrics"); code != http.StatusOK || !strings.Contains(body, "registry_http_requests_total") {
		t.Errorf("debug /metrics: %d, lacks registry_http_requests_total:\n%.500s", code, body)
	}
	if !strings.Contains(stderr.String(), config.NoEffectWarning+"policy.repository.classes") {
		t.Errorf("serve's log lacks the no-effect warning for policy.repository.classes:\n%s", stderr.String())
	}
	if _, body := get("http://" + debug + "/metrics"); !strings.Contains(body, `berth_config_noeffect_keys{key="policy.repository.classes"} 1`) {
		t.Errorf("debug /metrics lacks the no-effect key policy.repository.classes:\n%.500s", body)
	}
	if code, _ := get("http://" + addr + "/metrics"); code == http.StatusOK {
		t.Error("the registry listener serves /metrics")
	}
}
