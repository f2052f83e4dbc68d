package storage

import (
	"errors"

	"github.com/berth-registry/berth/storage/driver"
)

// ErrBackendTimeout is in the chain of an error whose backend call did not
// answer within its deadline (see driver.Timeouts): an outage, which a
// client may retry.
var ErrBackendTimeout = driver.ErrTimeout

// BackendFailure tells whether err is a failure of the storage backend
// (down, throttling past the driver's retries, out of space) and names
// the driver and the operation that failed, for the caller's answer.
func BackendFailure(err error) (driverName, op string, ok bool) {
	var pe *driver.PathError
	if !errors.As(err, &pe) {
		return "", "", false
	}
	return pe.Driver, pe.Op, true
}

// PartSize is the smallest chunk a chunked upload should send: the size of
// the parts the driver sends to its backend, below which it keeps a tail
// aside and sends it again with the next chunk; 0 when it has none.
func (r *Registry) PartSize() int64 {
	if p, ok := r.driver.(driver.PartSizer); ok {
		return p.PartSize()
	}
	return 0
}
