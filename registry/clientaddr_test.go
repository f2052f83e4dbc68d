package registry

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/berth-registry/berth/notifications"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestForwardedClientBelievesOnlyTrustedProxies(t *testing.T) {
	trusted := prefixes("10.0.0.0/8", "2001:db8::/32")
	tests := []struct {
		name   string
		peer   string
		header []string // pairs
		want   string   // "" when the request is taken as it is
	}{
		{"untrusted peer with X-Forwarded-For", "203.0.113.9:4000", []string{"X-Forwarded-For", "6.6.6.6"}, ""},
		{"untrusted peer with X-Real-Ip", "203.0.113.9:4000", []string{"X-Real-Ip", "6.6.6.6"}, ""},
		{"untrusted peer with Forwarded", "203.0.113.9:4000", []string{"Forwarded", "for=6.6.6.6"}, ""},
		{"trusted peer, one hop", "10.0.0.2:4000", []string{"X-Forwarded-For", "198.51.100.7"}, "198.51.100.7"},
		{"trusted peer, client's own header is left of the proxy's", "10.0.0.2:4000", []string{"X-Forwarded-For", "6.6.6.6, 198.51.100.7"}, "198.51.100.7"},
		{"chain of trusted proxies", "10.0.0.2:4000", []string{"X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.1.1.1, 10.2.2.2"}, "198.51.100.7"},
		{"header over several lines", "10.0.0.2:4000", []string{"X-Forwarded-For", "6.6.6.6", "X-Forwarded-For", "198.51.100.7, 10.1.1.1"}, "198.51.100.7"},
		{"all hops trusted", "10.0.0.2:4000", []string{"X-Forwarded-For", "10.9.9.9, 10.1.1.1"}, "10.9.9.9"},
		{"garbage hop stops the walk", "10.0.0.2:4000", []string{"X-Forwarded-For", "198.51.100.7, <script>, 10.1.1.1"}, "10.1.1.1"},
		{"hop with a port", "10.0.0.2:4000", []string{"X-Forwarded-For", "198.51.100.7:5555"}, "198.51.100.7"},
		{"IPv6 peer and hop", "[2001:db8::1]:4000", []string{"X-Forwarded-For", "2001:db9::5"}, "2001:db9::5"},
		{"IPv4-mapped peer", "[::ffff:10.0.0.2]:4000", []string{"X-Forwarded-For", "198.51.100.7"}, "198.51.100.7"},
		{"Forwarded", "10.0.0.2:4000", []string{"Forwarded", `for=6.6.6.6, for="[2001:db9::5]:4711";proto=https`}, "2001:db9::5"},
		{"Forwarded with a chain", "10.0.0.2:4000", []string{"Forwarded", `for=198.51.100.7;proto=https, for=10.1.1.1`}, "198.51.100.7"},
		{"Forwarded obfuscated", "10.0.0.2:4000", []string{"Forwarded", `for=_hidden`}, "10.0.0.2"},
		{"X-Real-Ip", "10.0.0.2:4000", []string{"X-Real-Ip", "198.51.100.7"}, "198.51.100.7"},
		{"X-Real-Ip garbage", "10.0.0.2:4000", []string{"X-Real-Ip", "nobody"}, ""},
		{"X-Forwarded-For before X-Real-Ip", "10.0.0.2:4000", []string{"X-Real-Ip", "6.6.6.6", "X-Forwarded-For", "198.51.100.7"}, "198.51.100.7"},
		{"trusted peer, no header", "10.0.0.2:4000", nil, ""},
		{"unparseable peer", "@unix", []string{"X-Forwarded-For", "6.6.6.6"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.NewRequest("GET", "http://registry.example.com/v2/", nil)
			if err != nil {
				t.Fatal(err)
			}
			r.RemoteAddr = tt.peer
			for i := 0; i+1 < len(tt.header); i += 2 {
				r.Header.Add(tt.header[i], tt.header[i+1])
			}
			got, ok := forwardedClient(r, trusted)
			if tt.want == "" {
				if ok {
					t.Fatalf("taken as coming from %q, want the peer", got)
				}
				return
			}
			if !ok || got != tt.want {
				t.Fatalf("client %q (%v), want %q", got, ok, tt.want)
			}
		})
	}
}

// eventRecorder is an EventSink that keeps what it is given.
type eventRecorder struct {
	mu     sync.Mutex
	events []notifications.Event
}

func (e *eventRecorder) Publish(_ context.Context, events ...notifications.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, events...)
	return nil
}

// TestSpoofedForwardedForIsIgnoredUnlessFromATrustedProxy sends a pull
// with a forged X-Forwarded-For over loopback and looks at every place the
// client's address shows: the event's request.addr, the access log line
// and the request the Authorizer is asked about.
func TestSpoofedForwardedForIsIgnoredUnlessFromATrustedProxy(t *testing.T) {
	tests := []struct {
		name    string
		trusted []netip.Prefix
		spoofed bool // whether the forged address is believed
	}{
		{"no proxies configured", nil, false},
		{"loopback not among the proxies", prefixes("10.0.0.0/8"), false},
		{"loopback is a trusted proxy", prefixes("10.0.0.0/8", "127.0.0.0/8"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := &eventRecorder{}
			logs := &logBuffer{}
			var authorized []string
			var mu sync.Mutex
			s := newServer(t, &setup{
				log: slog.New(slog.NewJSONHandler(logs, nil)),
				opts: Options{TrustedProxies: tt.trusted, Events: events,
					Authorize: func(_ http.ResponseWriter, r *http.Request, _ []Access) (*http.Request, error) {
						mu.Lock()
						defer mu.Unlock()
						authorized = append(authorized, r.RemoteAddr)
						return nil, nil
					}},
			})
			d := s.pushBlob("app", []byte("layer"))
			s.do("GET", "/v2/app/blobs/"+d.String(), nil, "X-Forwarded-For", "6.6.6.6").expect(t, http.StatusOK, "")

			events.mu.Lock()
			ev := events.events[len(events.events)-1]
			events.mu.Unlock()
			rec := logs.await(t, "request", func(rec map[string]any) bool {
				return rec["method"] == "GET" && rec["route"] == "/v2/<name>/blobs/<digest>"
			})
			mu.Lock()
			auth := authorized[len(authorized)-1]
			mu.Unlock()

			seen := map[string]string{"event request.addr": ev.Request.Addr, "access log remote": rec["remote"].(string), "authorizer": auth}
			for where, addr := range seen {
				forged := addr == "6.6.6.6"
				if forged != tt.spoofed {
					t.Errorf("%s = %q, forged address believed: %v, want %v", where, addr, forged, tt.spoofed)
				}
				if !tt.spoofed && !strings.HasPrefix(addr, "127.0.0.1:") {
					t.Errorf("%s = %q, want the loopback peer", where, addr)
				}
			}
			if proxy, _ := rec["proxy"].(string); tt.spoofed != strings.HasPrefix(proxy, "127.0.0.1:") {
				t.Errorf("access log proxy = %q", proxy)
			}
		})
	}
}

// TestForwardedHostBelievedOnlyFromTrustedProxiesWhenSet: with proxies
// configured, only they choose the host and scheme of Location headers
// (and so of the events' target.url); with none, anyone does, as with
// Distribution.
func TestForwardedHostBelievedOnlyFromTrustedProxiesWhenSet(t *testing.T) {
	tests := []struct {
		name     string
		trusted  []netip.Prefix
		believed bool
	}{
		{"no proxies configured", nil, true},
		{"loopback not among the proxies", prefixes("10.0.0.0/8"), false},
		{"loopback is a trusted proxy", prefixes("127.0.0.0/8"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, &setup{opts: Options{TrustedProxies: tt.trusted}})
			res := s.do("POST", "/v2/repo/blobs/uploads/", nil, "X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.example.com")
			res.expect(t, http.StatusAccepted, "")
			want := s.srv.URL
			if tt.believed {
				want = "https://evil.example.com"
			}
			if loc := res.header.Get("Location"); !strings.HasPrefix(loc, want+"/v2/repo/blobs/uploads/") {
				t.Fatalf("Location %q, want it on %s", loc, want)
			}
		})
	}
}
