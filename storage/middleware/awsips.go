package middleware

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// fetchTimeout bounds one download of the AWS address ranges.
const fetchTimeout = 30 * time.Second

// awsIPs holds AWS's published address ranges (all of them, or those of
// some regions), fetched at start and again every updatefrequency. Until
// a fetch succeeds it contains nothing, so every client goes through
// CloudFront.
type awsIPs struct {
	url     string
	regions []string
	log     *slog.Logger
	client  *http.Client

	mu       sync.RWMutex
	prefixes []netip.Prefix
}

// ipRanges is the part of AWS's ip-ranges.json that matters here.
type ipRanges struct {
	Prefixes []struct {
		Prefix string `json:"ip_prefix"`
		Region string `json:"region"`
	} `json:"prefixes"`
	V6Prefixes []struct {
		Prefix string `json:"ipv6_prefix"`
		Region string `json:"region"`
	} `json:"ipv6_prefixes"`
}

// newAWSIPs fetches the ranges once and keeps them fresh until ctx ends.
func newAWSIPs(ctx context.Context, url string, every time.Duration, regions []string, log *slog.Logger) *awsIPs {
	a := &awsIPs{url: url, log: log, client: &http.Client{Timeout: fetchTimeout}}
	for _, r := range regions {
		a.regions = append(a.regions, strings.ToLower(strings.TrimSpace(r)))
	}
	if err := a.update(ctx); err != nil {
		log.Warn("aws ip ranges not fetched: every client goes through cloudfront until they are", "url", url, "error", err)
	}
	go a.refresh(ctx, every)
	return a
}

func (a *awsIPs) refresh(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.update(ctx); err != nil {
				a.log.Warn("aws ip ranges not refreshed: keeping the last ones", "url", a.url, "error", err)
			}
		}
	}
}

func (a *awsIPs) update(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url, nil)
	if err != nil {
		return err
	}
	res, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", res.Status)
	}
	var doc ipRanges
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		return fmt.Errorf("decoding: %w", err)
	}
	var out []netip.Prefix
	add := func(prefix, region string) {
		if len(a.regions) > 0 && !slices.Contains(a.regions, strings.ToLower(region)) {
			return
		}
		p, err := netip.ParsePrefix(prefix)
		if err != nil {
			a.log.Warn("aws ip ranges: skipping an unparsable prefix", "prefix", prefix)
			return
		}
		out = append(out, p.Masked())
	}
	for _, p := range doc.Prefixes {
		add(p.Prefix, p.Region)
	}
	for _, p := range doc.V6Prefixes {
		add(p.Prefix, p.Region)
	}
	a.mu.Lock()
	a.prefixes = out
	a.mu.Unlock()
	return nil
}

func (a *awsIPs) contains(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// clientIP is the client's address as Distribution takes it for this
// choice: the first X-Forwarded-For hop, else X-Real-Ip, else the peer.
func clientIP(r *http.Request) netip.Addr {
	s := r.RemoteAddr
	if h, _, err := net.SplitHostPort(s); err == nil {
		s = h
	}
	if fwd := r.Header.Get("X-Forwarded-For"); fwd != "" {
		first, _, _ := strings.Cut(fwd, ",")
		s = strings.TrimSpace(first)
	} else if real := strings.TrimSpace(r.Header.Get("X-Real-Ip")); real != "" {
		s = real
	}
	ip, _ := netip.ParseAddr(s)
	return ip
}
