// Package notifications tells webhook endpoints what happened in the
// registry, in CNCF Distribution's event envelope so that existing
// receivers work unchanged. Unlike Distribution, whose queue lives in
// memory, every event is written to a spool on local disk before Publish
// returns and is removed only once its endpoint answered 2xx: delivery is
// at least once, across restarts and crashes.
//
// The path of an event is a chain of small steps: the Notifier stamps and
// encodes it once, each endpoint's filter drops what the endpoint ignores,
// the endpoint's queue spools it, and the queue's goroutine posts it with
// retries. The package knows nothing of the HTTP API that produces events.
package notifications

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Actions an event reports.
const (
	ActionPush   = "push"
	ActionPull   = "pull"
	ActionMount  = "mount"
	ActionDelete = "delete"
	// ActionFill is Berth's: a pull-through mirror fetched content from
	// its upstream (Target.Upstream) and stored it. Distribution's proxy
	// sends no event for it.
	ActionFill = "fill"
)

// Media types of the envelope. Distribution 3 sends v2; registry:2 sent v1
// with the same body, and some receivers check for it.
const (
	MediaTypeV2 = "application/vnd.docker.distribution.events.v2+json"
	MediaTypeV1 = "application/vnd.docker.distribution.events.v1+json"
)

// MediaTypeBlob is the target media type of blob events: Distribution
// describes every blob as a plain byte stream, and receivers filter blob
// events out by it (ignoredmediatypes: [application/octet-stream]).
const MediaTypeBlob = "application/octet-stream"

// Envelope is the body of one notification request.
type Envelope struct {
	Events []Event `json:"events,omitempty"`
}

// Event is one thing that happened, with Distribution's JSON field names.
type Event struct {
	// ID is unique per event; receivers de-duplicate redeliveries by it.
	ID        string        `json:"id,omitempty"`
	Timestamp time.Time     `json:"timestamp"`
	Action    string        `json:"action,omitempty"`
	Target    Target        `json:"target"`
	Request   RequestRecord `json:"request"`
	Actor     ActorRecord   `json:"actor"`
	Source    SourceRecord  `json:"source"`
}

// Target is what an event is about. The embedded descriptor's mediaType,
// digest and size are always present in the JSON, even empty (a tag
// delete), as Distribution sends them.
type Target struct {
	v1.Descriptor

	// Length repeats Size for receivers written before size existed.
	Length         int64  `json:"length,omitempty"`
	Repository     string `json:"repository,omitempty"`
	FromRepository string `json:"fromRepository,omitempty"`
	URL            string `json:"url,omitempty"`
	Tag            string `json:"tag,omitempty"`
	// References are a manifest's config and layers, or an index's
	// manifests, when notifications.events.includereferences is set.
	References []v1.Descriptor `json:"references,omitempty"`
	// Upstream is the registry a mirror fetched the target from, in a
	// fill event (Berth only).
	Upstream string `json:"upstream,omitempty"`
}

// RequestRecord is the HTTP request that caused an event.
type RequestRecord struct {
	ID        string `json:"id"`
	Addr      string `json:"addr,omitempty"`
	Host      string `json:"host,omitempty"`
	Method    string `json:"method"`
	UserAgent string `json:"useragent"`
}

// ActorRecord is who acted: the authenticated user, if any.
type ActorRecord struct {
	Name string `json:"name,omitempty"`
}

// SourceRecord is the registry instance that produced an event.
type SourceRecord struct {
	Addr       string `json:"addr,omitempty"`
	InstanceID string `json:"instanceID,omitempty"`
}

// NewID returns a random (version 4) UUID, the form of Distribution's
// event and instance ids.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails, by its documentation
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
