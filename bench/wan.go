package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// wanShape is the link each server's object store sits behind with
// -backend s3: what one TCP stream from a cloud VM to its region's object
// store gets. Latency is added in each direction, bandwidth is per
// connection and per direction, so parallel connections add up as they do
// against S3.
type wanShape struct {
	latency time.Duration // each way
	rateKB  int           // per connection and direction, KB/s (toxiproxy's unit, 1000 bytes)
}

var defaultWAN = wanShape{latency: 10 * time.Millisecond, rateKB: 50000}

func (w wanShape) String() string { return w.of("MinIO") }

// of describes the shape with the object store it is in front of.
func (w wanShape) of(store string) string {
	return fmt.Sprintf("%s behind toxiproxy v2.5.0: %s latency each way, %d MB/s per connection each way",
		store, w.latency, w.rateKB/1000)
}

// toxiproxy is one toxiproxy server for the whole run; each MinIO gets a
// proxy of its own on it.
type toxiproxy struct {
	*proc
	api   string // http://127.0.0.1:PORT
	shape wanShape
	hc    *http.Client
}

func startToxiproxy(ctx context.Context, bin, dir string, shape wanShape) (*toxiproxy, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	p, err := startProc("toxiproxy", exec.Command(bin, "-host", host, "-port", port), filepath.Join(dir, "toxiproxy.log"))
	if err != nil {
		return nil, err
	}
	t := &toxiproxy{proc: p, api: "http://" + addr, shape: shape,
		hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}}
	if err := waitHTTP(ctx, t.api+"/version", t.done, 30*time.Second); err != nil {
		t.stop()
		return nil, fmt.Errorf("toxiproxy: %w\n%s", err, tail(filepath.Join(dir, "toxiproxy.log")))
	}
	return t, nil
}

// link is the endpoint (http://host:port) a server reaches the store at
// endpoint through: endpoint itself, or, when the run is shaped, a proxy
// with the run's shape in front of it, which unshape removes.
func (h *harness) link(ctx context.Context, name, endpoint string) (shaped string, unshape func(), err error) {
	if h.wan == nil {
		return endpoint, func() {}, nil
	}
	listen, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	remove, err := h.wan.shapeLinkAt(ctx, name, listen, strings.TrimPrefix(endpoint, "http://"))
	if err != nil {
		return "", nil, err
	}
	return "http://" + listen, remove, nil
}

// shapeLinkAt puts a proxy with the run's shape, listening on listen, in
// front of upstream (host:port), and returns what removes it. A store
// that must know the address its clients use when it starts has listen
// chosen beforehand.
func (t *toxiproxy) shapeLinkAt(ctx context.Context, name, listen, upstream string) (func(), error) {
	if err := t.post(ctx, "/proxies", map[string]any{"name": name, "listen": listen, "upstream": upstream, "enabled": true}); err != nil {
		return nil, err
	}
	remove := func() { t.call(context.Background(), http.MethodDelete, "/proxies/"+name, nil) }
	for _, stream := range []string{"upstream", "downstream"} {
		toxics := []map[string]any{
			{"name": "latency-" + stream, "type": "latency", "stream": stream, "toxicity": 1.0,
				"attributes": map[string]any{"latency": t.shape.latency.Milliseconds(), "jitter": 0}},
			{"name": "bandwidth-" + stream, "type": "bandwidth", "stream": stream, "toxicity": 1.0,
				"attributes": map[string]any{"rate": t.shape.rateKB}},
		}
		for _, x := range toxics {
			if err := t.post(ctx, "/proxies/"+name+"/toxics", x); err != nil {
				remove()
				return nil, err
			}
		}
	}
	return remove, nil
}

func (t *toxiproxy) post(ctx context.Context, path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return t.call(ctx, http.MethodPost, path, b)
}

func (t *toxiproxy) call(ctx context.Context, method, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, method, t.api+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.hc.Do(req)
	if err != nil {
		return fmt.Errorf("toxiproxy %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("toxiproxy %s %s: status %d: %s", method, path, resp.StatusCode, msg)
	}
	return nil
}
