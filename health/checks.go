package health

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

// probeDir holds the storage check's probe files, outside
// docker/registry/v2 so that neither Berth's nor Distribution's content
// walks ever see them.
const probeDir = "/_berth/health"

// StorageDriver checks that d answers and, unless readOnly, that it takes
// a write: each run writes a small probe file, stats it and deletes it, so
// a full disk, a lost mount or revoked write permissions fail the check,
// which a mere stat would not notice. In read-only mode (the storage may
// be mounted read-only on purpose) it stats the root, where not found
// (an empty bucket) passes, as Distribution's check does.
//
// The probe's name is random per check, so instances sharing a backend do
// not race on one file. On a file system, /_berth/health stays between
// runs, empty.
func StorageDriver(d driver.Driver, readOnly bool) Check {
	probe := driver.Join(probeDir, rand.Text())
	return func(ctx context.Context) error {
		if readOnly {
			if _, err := d.Stat(ctx, "/"); err != nil && !errors.Is(err, driver.ErrNotFound) {
				return err
			}
			return nil
		}
		content := []byte("berth health probe\n")
		if err := driver.PutContent(ctx, d, probe, content); err != nil {
			return err
		}
		fi, err := d.Stat(ctx, probe)
		if err != nil {
			return err
		}
		if fi.Size != int64(len(content)) {
			return fmt.Errorf("health probe %s: wrote %d bytes, stat says %d", probe, len(content), fi.Size)
		}
		// The probe's directory stays for the next run, on a file system
		// as on an object store (which has no directories): made and
		// removed every run, two directories cost more than the probe.
		return driver.DeleteKeepParent(ctx, d, probe)
	}
}

// File fails while the file at path exists ("file exists"), as an
// operator's switch to take an instance out of a load balancer. An error
// other than not-existing also fails.
func File(path string) Check {
	return func(context.Context) error {
		_, err := os.Stat(path)
		switch {
		case err == nil:
			return errors.New("file exists")
		case errors.Is(err, fs.ErrNotExist):
			return nil
		default:
			return err
		}
	}
}

// HTTP sends a HEAD request to uri with headers and fails unless the
// response has status (200 when zero). The check's own deadline bounds
// the request; timeout, when set, bounds it further.
func HTTP(uri string, status int, timeout time.Duration, headers http.Header) Check {
	if status == 0 {
		status = http.StatusOK
	}
	client := &http.Client{Timeout: timeout}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, uri, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", uri, err)
		}
		for k, vs := range headers {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", uri, err)
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			return fmt.Errorf("%s: downstream service returned unexpected status: %d", uri, resp.StatusCode)
		}
		return nil
	}
}

// TCP fails unless a TCP connection to addr opens within timeout (or the
// check's own deadline when zero).
func TCP(addr string, timeout time.Duration) Check {
	return func(ctx context.Context) error {
		d := net.Dialer{Timeout: timeout}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("%s: connection failed: %w", addr, err)
		}
		return conn.Close()
	}
}
