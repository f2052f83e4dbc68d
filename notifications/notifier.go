package notifications

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"time"
)

// Config configures a Notifier.
type Config struct {
	// Source is stamped on every event.
	Source SourceRecord
	// Spool is the directory holding one subdirectory per endpoint, for
	// endpoints that name none of their own.
	Spool string
	// SpoolMaxBytes caps each endpoint's spool, for endpoints that set no
	// cap of their own.
	SpoolMaxBytes int64
	Endpoints     []EndpointConfig
}

// Notifier sends every event it is given to each of its endpoints.
type Notifier struct {
	source    SourceRecord
	endpoints []*endpoint
}

// record is an event and its JSON, encoded once for every endpoint.
type record struct {
	ev   *Event
	data []byte
}

// New opens every endpoint's spool and starts delivering what is already
// in it, then returns a Notifier ready for Publish. Close it to stop.
func New(cfg Config, log *slog.Logger) (*Notifier, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{source: cfg.Source}
	seen := map[string]bool{}
	for _, ec := range cfg.Endpoints {
		if seen[ec.Name] {
			n.Close(context.Background())
			return nil, fmt.Errorf("notifications: endpoint name %q used twice", ec.Name)
		}
		seen[ec.Name] = true
		if ec.Spool == "" && cfg.Spool != "" {
			ec.Spool = filepath.Join(cfg.Spool, SpoolDirName(ec.Name))
		}
		if ec.SpoolMaxBytes == 0 {
			ec.SpoolMaxBytes = cfg.SpoolMaxBytes
		}
		e, err := openEndpoint(ec, log)
		if err != nil {
			n.Close(context.Background())
			return nil, fmt.Errorf("notifications: %w", err)
		}
		n.endpoints = append(n.endpoints, e)
	}
	return n, nil
}

// Publish stamps events (id, timestamp and source, where unset) and spools
// them for every endpoint that does not ignore them. When it returns nil,
// pushes, mounts and deletes are on stable storage and will be delivered
// even if the process dies; pulls are written with the next batch, within
// DefaultPullDelay, and the pulls of that moment are lost if the process
// dies before. ctx is not consulted: an event that happened is recorded even if
// the request that caused it has gone.
func (n *Notifier) Publish(_ context.Context, events ...Event) error {
	if len(events) == 0 || len(n.endpoints) == 0 {
		return nil
	}
	recs := make([]record, len(events))
	for i := range events {
		ev := &events[i]
		if ev.ID == "" {
			ev.ID = NewID()
		}
		if ev.Timestamp.IsZero() {
			ev.Timestamp = time.Now().UTC()
		}
		if ev.Source == (SourceRecord{}) {
			ev.Source = n.source
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("notifications: %w", err)
		}
		recs[i] = record{ev: ev, data: data}
	}
	// Every endpoint takes the events into its batch first, then Publish
	// waits for those that must be durable: the endpoints write their
	// spools side by side, at the cost of one write's time.
	var errs []error
	var waits []*batch
	for _, e := range n.endpoints {
		b, err := e.enqueue(recs)
		if err != nil {
			errs = append(errs, err)
		} else if b != nil {
			waits = append(waits, b)
		}
	}
	for _, b := range waits {
		errs = append(errs, b.wait())
	}
	return errors.Join(errs...)
}

// Metrics returns each endpoint's metrics, in configuration order.
func (n *Notifier) Metrics() []Metrics {
	ms := make([]Metrics, len(n.endpoints))
	for i, e := range n.endpoints {
		ms[i] = e.metrics()
	}
	return ms
}

// Close stops delivery, waiting for attempts in flight until ctx is done.
// Undelivered events stay in the spools for the next start.
func (n *Notifier) Close(ctx context.Context) error {
	var errs []error
	for _, e := range n.endpoints {
		errs = append(errs, e.close(ctx))
	}
	return errors.Join(errs...)
}

var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// SpoolDirName is the subdirectory of an endpoint's spool: its name when
// that is a safe file name, else a hash of it, so that no name can reach
// outside the spool or collide with another.
func SpoolDirName(endpoint string) string {
	if safeName.MatchString(endpoint) && len(endpoint) <= 100 {
		return endpoint
	}
	sum := sha256.Sum256([]byte(endpoint))
	return "endpoint-" + hex.EncodeToString(sum[:8])
}
