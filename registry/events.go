package registry

import (
	"context"
	"encoding/json"
	"net/http"
	"unicode/utf8"

	"github.com/berth-registry/berth/notifications"
	"github.com/berth-registry/berth/storage"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// EventSink hears what clients did: pushes, pulls, mounts and deletes, in
// CNCF Distribution's event format. Publish returns once the events are
// recorded (durably, for the notifications package), and the handler
// sends its response only after that. The registry knows nothing of how
// events are queued or delivered.
type EventSink interface {
	Publish(ctx context.Context, events ...notifications.Event) error
}

// Bounds on what a client controls in an event. Every pull is an event,
// spooled and sent to each endpoint: without a bound a client sending a
// User-Agent of hundreds of KiB makes each of its pulls that big, and
// fills the spool with a few hundred of them. Real values are far
// shorter: a User-Agent of docker, containerd or buildkit is under 300
// bytes, a host name at most 253 bytes and its port, an address at most
// an IPv6 one with a zone and a port.
const (
	maxEventUserAgent = 512
	maxEventHost      = 270
	maxEventAddr      = 128
	maxEventURL       = 2048
	maxEventActor     = 256
)

// bounded cuts s to at most n bytes, at a character boundary.
func bounded(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	// Drop a character cut in two; JSON would turn it into U+FFFD.
	for i := 0; i < utf8.UTFMax && len(s) > 0; i++ {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

// publish hands events to the sink. A failure is logged, never sent to the
// client: what the event reports has already happened.
func (a *api) publish(r *http.Request, req *request, events ...notifications.Event) {
	if err := a.opts.Events.Publish(r.Context(), events...); err != nil {
		req.log.ErrorContext(r.Context(), "event publish failed", "repo", req.name, "action", events[0].Action, "error", err)
	}
}

// newEvent is an event on req's repository with the request and actor
// filled in, as Distribution fills them.
func newEvent(w http.ResponseWriter, r *http.Request, req *request, action string) notifications.Event {
	return notifications.Event{
		Action: action,
		Target: notifications.Target{Repository: req.name},
		Request: notifications.RequestRecord{
			// ServeHTTP set it before dispatch; it is the id in the logs.
			ID: w.Header().Get("X-Request-Id"),
			// The client behind trusted proxies (forwardedClient).
			Addr:      bounded(r.RemoteAddr, maxEventAddr),
			Host:      bounded(r.Host, maxEventHost),
			Method:    r.Method,
			UserAgent: bounded(r.UserAgent(), maxEventUserAgent),
		},
		Actor: notifications.ActorRecord{Name: bounded(UserFromContext(r.Context()), maxEventActor)},
	}
}

// notifyBlob reports a blob pushed, pulled or mounted (from is the source
// repository of a mount).
func (a *api) notifyBlob(w http.ResponseWriter, r *http.Request, req *request, action string, desc storage.Descriptor, from string) {
	if a.opts.Events == nil {
		return
	}
	ev := newEvent(w, r, req, action)
	// Distribution describes every blob as a byte stream, whatever
	// manifest refers to it; receivers filter blob events by that type.
	ev.Target.Descriptor = v1.Descriptor{MediaType: notifications.MediaTypeBlob, Digest: desc.Digest, Size: desc.Size}
	ev.Target.Length = desc.Size
	ev.Target.FromRepository = from
	ev.Target.URL = bounded(a.location(r, blobPath(req.name, desc.Digest.String()), nil), maxEventURL)
	a.publish(r, req, ev)
}

// notifyManifest reports a manifest pushed or pulled: one event per tag
// it was pushed or pulled by, or one without a tag when by digest.
func (a *api) notifyManifest(w http.ResponseWriter, r *http.Request, req *request, action string, desc storage.Descriptor, payload []byte, tags []string) {
	if a.opts.Events == nil {
		return
	}
	ev := newEvent(w, r, req, action)
	ev.Target.Descriptor = v1.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}
	ev.Target.Length = desc.Size
	ev.Target.URL = bounded(a.location(r, manifestPath(req.name, desc.Digest.String()), nil), maxEventURL)
	if a.opts.EventReferences {
		ev.Target.References = manifestReferences(payload)
	}
	if len(tags) == 0 {
		a.publish(r, req, ev)
		return
	}
	events := make([]notifications.Event, len(tags))
	for i, t := range tags {
		events[i] = ev
		events[i].Target.Tag = t
	}
	a.publish(r, req, events...)
}

// notifyDelete reports a manifest or blob deleted by digest, or a tag
// deleted; the target has only the repository and the digest or tag, as
// in Distribution.
func (a *api) notifyDelete(w http.ResponseWriter, r *http.Request, req *request, d digest.Digest, tag string) {
	if a.opts.Events == nil {
		return
	}
	ev := newEvent(w, r, req, notifications.ActionDelete)
	ev.Target.Digest = d
	ev.Target.Tag = tag
	a.publish(r, req, ev)
}

// manifestReferences lists what a manifest refers to, as Distribution's
// References does: an image manifest's config and layers, an index's
// manifests.
func manifestReferences(payload []byte) []v1.Descriptor {
	var m struct {
		Config    *v1.Descriptor  `json:"config"`
		Layers    []v1.Descriptor `json:"layers"`
		Manifests []v1.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(payload, &m); err != nil {
		return nil
	}
	if m.Manifests != nil || m.Config == nil {
		return m.Manifests
	}
	return append([]v1.Descriptor{*m.Config}, m.Layers...)
}

// tagOf is the tag a manifest reference names, if it is one.
func tagOf(ref string) []string {
	if isDigestRef(ref) {
		return nil
	}
	return []string{ref}
}
