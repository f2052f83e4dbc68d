package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// GCS is a fake-gcs-server on loopback, started by StartGCS. It speaks the
// JSON API (resumable uploads included) and the XML API for downloads and
// signed URLs, without checking credentials.
type GCS struct {
	// Endpoint is the server's base URL, http://127.0.0.1:PORT: what
	// STORAGE_EMULATOR_HOST or the gcs driver's endpoint key takes.
	Endpoint string
	// Bucket exists from the start.
	Bucket string
}

// StartGCS starts fake-gcs-server (the pinned build from scripts/tools.sh)
// on a free loopback port, keeping objects in memory, with the bucket
// "berth" created, waits until it answers, and stops it when the test ends.
func StartGCS(t testing.TB) *GCS {
	t.Helper()
	bin := Tool(t, "fake-gcs-server")
	g := &GCS{Bucket: "berth"}
	// The server makes a bucket of every folder in -data at start.
	data := t.TempDir()
	if err := os.Mkdir(filepath.Join(data, g.Bucket), 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	startOnFreePorts(t, "fake-gcs-server", 1, http.DefaultClient, func(ports []int) (*Process, string) {
		addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
		g.Endpoint = "http://" + addr
		p := StartProcess(t, bin, []string{
			"-scheme", "http", "-host", "127.0.0.1", "-port", strconv.Itoa(ports[0]),
			"-backend", "memory", "-data", data,
			// Upload session URIs and signed URLs name this server rather
			// than the real service.
			"-public-host", addr, "-external-url", g.Endpoint,
			"-log-level", "warn",
		}, nil)
		return p, g.Endpoint + "/storage/v1/b/" + g.Bucket
	}, answersOK)
	return g
}

// NewBucket creates a fresh bucket named after the test and returns its
// name.
func (g *GCS) NewBucket(t testing.TB) string {
	t.Helper()
	name := bucketName(t.Name())
	body, err := json.Marshal(map[string]string{"name": name})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.Endpoint+"/storage/v1/b?project=berth", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("testenv: create bucket %s: %v", name, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("testenv: create bucket %s: %s", name, resp.Status)
	}
	return name
}
