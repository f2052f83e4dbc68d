package registry

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestCanonicalDigestParsesLikeTheGrammar(t *testing.T) {
	hex := strings.Repeat("0123456789abcdef", 4)
	for _, tt := range []struct {
		s  string
		ok bool
	}{
		{"sha256:" + hex, true},
		{"sha512:" + hex + hex, true},
		{"sha256:" + hex[:63] + "A", false},
		{"sha256:" + hex[:63], false},
		{"sha512:" + hex, false},
		{"md5:" + hex[:32], false},
	} {
		if _, err := parseDigest(tt.s); (err == nil) != tt.ok {
			t.Errorf("parseDigest(%q) error %v, want ok %v", tt.s, err, tt.ok)
		}
	}
}

// The request id is written once per line, outside any group.
func TestRequestLogAddsTheIDOnce(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewTextHandler(&buf, nil))
	log := requestLog(base, "abc")
	log.InfoContext(context.Background(), "request", "status", 200)
	log.With("repo", "x").WithGroup("g").Info("grouped", "k", "v")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines:\n%s", len(lines), buf.String())
	}
	for _, l := range lines {
		if strings.Count(l, "request_id=abc") != 1 {
			t.Errorf("line lacks exactly one request_id=abc: %s", l)
		}
	}
	if !strings.Contains(lines[1], "g.k=v") {
		t.Errorf("group lost: %s", lines[1])
	}
}
