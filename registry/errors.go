package registry

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/berth-registry/berth/storage"
)

// Code is an error code of the distribution API, sent in the "code" field
// of the JSON error body.
type Code string

// The codes of the OCI distribution spec, plus the few that CNCF
// Distribution adds and clients know (RANGE_INVALID, TAG_INVALID,
// PAGINATION_NUMBER_INVALID, UNAVAILABLE), plus UNKNOWN for server faults.
const (
	CodeBlobUnknown         Code = "BLOB_UNKNOWN"
	CodeBlobUploadInvalid   Code = "BLOB_UPLOAD_INVALID"
	CodeBlobUploadUnknown   Code = "BLOB_UPLOAD_UNKNOWN"
	CodeDigestInvalid       Code = "DIGEST_INVALID"
	CodeManifestBlobUnknown Code = "MANIFEST_BLOB_UNKNOWN"
	CodeManifestInvalid     Code = "MANIFEST_INVALID"
	CodeManifestUnknown     Code = "MANIFEST_UNKNOWN"
	CodeNameInvalid         Code = "NAME_INVALID"
	CodeNameUnknown         Code = "NAME_UNKNOWN"
	CodeSizeInvalid         Code = "SIZE_INVALID"
	CodeUnauthorized        Code = "UNAUTHORIZED"
	CodeDenied              Code = "DENIED"
	CodeUnsupported         Code = "UNSUPPORTED"
	CodeTooManyRequests     Code = "TOOMANYREQUESTS"
	CodeUnavailable         Code = "UNAVAILABLE"
	CodeRangeInvalid        Code = "RANGE_INVALID"
	CodeTagInvalid          Code = "TAG_INVALID"
	CodePaginationInvalid   Code = "PAGINATION_NUMBER_INVALID"
	CodeUnknown             Code = "UNKNOWN"
)

// codes is the one table of API errors: the default message and HTTP
// status of each code.
var codes = map[Code]struct {
	message string
	status  int
}{
	CodeBlobUnknown:         {"blob unknown to registry", http.StatusNotFound},
	CodeBlobUploadInvalid:   {"blob upload invalid", http.StatusBadRequest},
	CodeBlobUploadUnknown:   {"blob upload unknown to registry", http.StatusNotFound},
	CodeDigestInvalid:       {"provided digest did not match uploaded content", http.StatusBadRequest},
	CodeManifestBlobUnknown: {"manifest references a manifest or blob unknown to registry", http.StatusNotFound},
	CodeManifestInvalid:     {"manifest invalid", http.StatusBadRequest},
	CodeManifestUnknown:     {"manifest unknown to registry", http.StatusNotFound},
	CodeNameInvalid:         {"invalid repository name", http.StatusBadRequest},
	CodeNameUnknown:         {"repository name not known to registry", http.StatusNotFound},
	CodeSizeInvalid:         {"provided length did not match content length", http.StatusBadRequest},
	CodeUnauthorized:        {"authentication required", http.StatusUnauthorized},
	CodeDenied:              {"requested access to the resource is denied", http.StatusForbidden},
	CodeUnsupported:         {"the operation is unsupported", http.StatusMethodNotAllowed},
	CodeTooManyRequests:     {"too many requests", http.StatusTooManyRequests},
	CodeUnavailable:         {"service unavailable", http.StatusServiceUnavailable},
	CodeRangeInvalid:        {"invalid content range", http.StatusRequestedRangeNotSatisfiable},
	CodeTagInvalid:          {"invalid tag", http.StatusBadRequest},
	CodePaginationInvalid:   {"invalid number of results requested", http.StatusBadRequest},
	CodeUnknown:             {"unknown error", http.StatusInternalServerError},
}

// Error is an API error: what the client is told (code, message, detail,
// status) and, in Err, the cause that is only logged.
type Error struct {
	Code Code
	// Message replaces the code's default message when not empty.
	Message string
	// Detail is sent as the "detail" field when not nil.
	Detail any
	// Status replaces the code's default HTTP status when not zero.
	Status int
	// Err is the cause, logged and never sent.
	Err error
}

func (e *Error) Error() string {
	s := string(e.Code) + ": " + e.message()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

func (e *Error) message() string {
	if e.Message != "" {
		return e.Message
	}
	return codes[e.Code].message
}

// HTTPStatus is the status the error is sent with.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	if c, ok := codes[e.Code]; ok {
		return c.status
	}
	return http.StatusInternalServerError
}

// apiErr is shorthand for an error with a code and a message.
func apiErr(code Code, message string) *Error {
	return &Error{Code: code, Message: message}
}

// errorFor turns any error a handler returns into an API error: *Error as
// it is, the storage package's errors by their sentinel, anything else a
// 500 whose cause is logged and not shown.
func errorFor(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, storage.ErrBackendTimeout) {
		// First: a backend that stops answering is an outage, whatever
		// the step that noticed it concluded. UNAVAILABLE tells clients
		// to retry.
		return &Error{Code: CodeUnavailable, Message: "storage backend did not answer in time, retry later", Err: err}
	}
	code := CodeUnknown
	switch {
	case errors.Is(err, storage.ErrCollecting):
		// First: what is being collected may also be reported gone.
		code = CodeUnavailable
	case errors.Is(err, storage.ErrBlobUnknown):
		code = CodeBlobUnknown
	case errors.Is(err, storage.ErrManifestUnknown):
		code = CodeManifestUnknown
	case errors.Is(err, storage.ErrManifestBlobUnknown):
		code = CodeManifestBlobUnknown
	case errors.Is(err, storage.ErrManifestInvalid):
		code = CodeManifestInvalid
	case errors.Is(err, storage.ErrUploadUnknown):
		code = CodeBlobUploadUnknown
	case errors.Is(err, storage.ErrUploadInvalid):
		code = CodeBlobUploadInvalid
	case errors.Is(err, storage.ErrDigestInvalid), errors.Is(err, storage.ErrUnsupportedDigest):
		code = CodeDigestInvalid
	case errors.Is(err, storage.ErrSizeInvalid):
		code = CodeSizeInvalid
	case errors.Is(err, storage.ErrRangeInvalid):
		code = CodeRangeInvalid
	case errors.Is(err, storage.ErrNameUnknown):
		code = CodeNameUnknown
	case errors.Is(err, storage.ErrDeleteDisabled):
		return &Error{Code: CodeUnsupported, Message: "deletes are disabled", Err: err}
	case errors.Is(err, storage.ErrUnsupported):
		return &Error{Code: CodeUnsupported, Message: err.Error(), Err: err}
	case errors.Is(err, storage.ErrUpstreamTimeout):
		return upstreamError(err, http.StatusServiceUnavailable)
	case errors.Is(err, storage.ErrUpstreamUnavailable):
		return upstreamError(err, http.StatusBadGateway)
	}
	if code == CodeUnknown {
		if drv, op, ok := storage.BackendFailure(err); ok {
			// The backend failed (down, throttling past the driver's
			// retries, out of space): 503 tells clients to retry, and
			// nothing was stored half-way.
			return &Error{
				Code:    CodeUnknown,
				Status:  http.StatusServiceUnavailable,
				Message: "storage backend unavailable, retry later",
				Detail:  map[string]string{"driver": drv, "operation": op},
				Err:     err,
			}
		}
		return &Error{Code: CodeUnknown, Err: err}
	}
	out := &Error{Code: code, Err: err}
	var se *storage.Error
	if errors.As(err, &se) {
		if se.Detail != "" {
			out.Message = codes[code].message + ": " + se.Detail
		}
		if se.Digest != "" {
			out.Detail = map[string]string{"digest": se.Digest.String()}
		}
	} else if errors.Is(err, storage.ErrUnsupportedDigest) {
		out.Message = "unsupported digest algorithm"
	}
	return out
}

// upstreamError is a mirror's upstream failing for content it has no copy
// of: the message (the storage error's text) names the upstream and what
// went wrong, which the client is meant to see.
func upstreamError(err error, status int) *Error {
	return &Error{Code: CodeUnavailable, Status: status, Message: err.Error(), Err: err}
}

type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError is the one place an error becomes a response: the OCI JSON
// body with the code's status, logged at error level for server faults and
// at debug level for client errors.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := errorFor(err)
	status := e.HTTPStatus()
	ctx := r.Context()
	switch {
	case status >= 500 && ctx.Err() != nil && errors.Is(err, context.Canceled):
		// The client went away; nobody will read the response.
		log.DebugContext(ctx, "request canceled", "error", err)
	case status >= 500:
		log.ErrorContext(ctx, "request failed", "code", string(e.Code), "status", status, "error", err)
	default:
		log.DebugContext(ctx, "request refused", "code", string(e.Code), "status", status, "error", err)
	}
	if rw, ok := w.(*responseWriter); ok && rw.wroteHeader {
		// The response is under way; the log line is all we can do.
		return
	}
	body, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: e.Code, Message: e.message(), Detail: e.Detail}}})
	h := w.Header()
	// Headers of a success path that failed late must not describe the
	// error body. Location and Range stay: a 416 on an upload sends them
	// on purpose so the client can resume, and a 416 on a blob GET sends
	// Content-Range with the blob's size.
	for _, k := range []string{"Docker-Content-Digest", "Etag", "Accept-Ranges", "Last-Modified", "Content-Encoding"} {
		h.Del(k)
	}
	if status != http.StatusRequestedRangeNotSatisfiable {
		h.Del("Content-Range")
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
