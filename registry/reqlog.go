package registry

import (
	"context"
	"log/slog"
)

// requestLog returns log with the request id attached. It adds the id
// only when a record is actually written: slog's Logger.With would format
// the attribute for every request, which showed in the profile of a HEAD,
// though most requests write one line or none.
func requestLog(log *slog.Logger, id string) *slog.Logger {
	return slog.New(requestIDHandler{Handler: log.Handler(), id: id})
}

type requestIDHandler struct {
	slog.Handler
	id string
}

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(slog.String("request_id", h.id))
	return h.Handler.Handle(ctx, r)
}

// WithAttrs and WithGroup attach the id eagerly, so that it stays outside
// any group, as Logger.With would have put it.
func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.eager().WithAttrs(attrs)
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return h.eager().WithGroup(name)
}

func (h requestIDHandler) eager() slog.Handler {
	return h.Handler.WithAttrs([]slog.Attr{slog.String("request_id", h.id)})
}
