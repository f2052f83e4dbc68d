package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestH2CServesUnencryptedHTTP2 speaks HTTP/2 with prior knowledge, as an
// h2c client behind a TLS-terminating proxy does: only with
// http.h2c.enabled does the plain listener answer it.
func TestH2CServesUnencryptedHTTP2(t *testing.T) {
	for _, enabled := range []bool{true, false} {
		t.Run(map[bool]string{true: "enabled", false: "disabled"}[enabled], func(t *testing.T) {
			addr := freeAddr(t)
			cfg := filepath.Join(t.TempDir(), "config.yml")
			h2c := "false"
			if enabled {
				h2c = "true"
			}
			writeFile(t, cfg, "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "+filepath.Join(t.TempDir(), "root")+
				"\nhttp:\n  addr: "+addr+"\n  h2c:\n    enabled: "+h2c+"\n")
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan int, 1)
			var stderr syncBuffer
			go func() { done <- run(ctx, []string{"serve", cfg}, io.Discard, &stderr, nil) }()
			t.Cleanup(func() {
				cancel()
				<-done
			})
			waitUp(t, "http://"+addr+"/v2/")

			var p http.Protocols
			p.SetUnencryptedHTTP2(true) // prior knowledge only: no HTTP/1.1 fallback
			client := &http.Client{Transport: &http.Transport{Protocols: &p}}
			resp, err := client.Get("http://" + addr + "/v2/")
			if !enabled {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("h2c request answered (%s) with http.h2c disabled", resp.Proto)
				}
				return
			}
			if err != nil {
				t.Fatalf("h2c request: %v\n%s", err, stderr.String())
			}
			resp.Body.Close()
			if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
				t.Errorf("got %s %d, want HTTP/2.0 200", resp.Proto, resp.StatusCode)
			}
			if strings.Contains(stderr.String(), "http.h2c") {
				t.Errorf("serve warns about http.h2c, which takes effect:\n%s", stderr.String())
			}
			// HTTP/1.1 still works beside it.
			resp, err = http.Get("http://" + addr + "/v2/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.ProtoMajor != 1 {
				t.Errorf("plain client got %s, want HTTP/1.1", resp.Proto)
			}
		})
	}
}
