// Package swift is the Berth storage driver for OpenStack Swift. Objects
// are laid out as CNCF Distribution v2 laid them out: a file at /a/b is the
// object <prefix>/files/a/b, and a file written in segments is a Dynamic
// Large Object manifest there whose segments are <prefix>/segments/<id>/N.
// An unfinished write is described by a state object under
// <prefix>/uploads/, which nothing else lists.
package swift

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ncw/swift/v2"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/partbuf"
)

const (
	driverName  = "swift"
	contentType = "application/octet-stream"
)

func init() {
	driver.Register(driverName, func(ctx context.Context, params driver.Params) (driver.Driver, error) {
		return New(ctx, params)
	})
	driver.RegisterCheck(driverName, func(params driver.Params) error {
		_, err := newConfig(params)
		return err
	})
}

// Driver stores files as objects in one Swift container.
type Driver struct {
	cfg  *config
	conn *swift.Connection

	infoCache

	keyMu  sync.Mutex
	keySet bool // the temp URL key is known to be on the container or account

	bufs *partbuf.Pool // segment buffers of cfg.ChunkSize, one per open writer
}

var (
	_ driver.Walker        = (*Driver)(nil)
	_ driver.Redirector    = (*Driver)(nil)
	_ driver.ContentPutter = (*Driver)(nil)
	_ driver.UploadLister  = (*Driver)(nil)
)

// New authenticates and makes sure the container exists, creating it as
// Distribution does, so a wrong password stops Berth at start.
func New(ctx context.Context, params driver.Params) (*Driver, error) {
	cfg, err := newConfig(params)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	if cfg.InsecureSkipVerify {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	conn := &swift.Connection{
		UserName:       cfg.Username,
		ApiKey:         cfg.Password,
		AuthUrl:        cfg.AuthURL,
		Region:         cfg.Region,
		AuthVersion:    cfg.AuthVersion,
		Tenant:         cfg.tenant,
		TenantId:       cfg.tenantID,
		Domain:         cfg.Domain,
		DomainId:       cfg.DomainID,
		TenantDomain:   cfg.TenantDomain,
		TenantDomainId: cfg.TenantDomainID,
		TrustId:        cfg.TrustID,
		EndpointType:   swift.EndpointType(cfg.EndpointType),
		UserAgent:      "berth",
		Transport:      &retrying{next: tr},
		ConnectTimeout: 60 * time.Second,
		Timeout:        15 * time.Minute,
	}
	if err := conn.Authenticate(ctx); err != nil {
		return nil, fmt.Errorf("swift authentication: %w", err)
	}
	if _, _, err := conn.Container(alone(ctx), cfg.Container); errors.Is(err, swift.ContainerNotFound) {
		if err := conn.ContainerCreate(ctx, cfg.Container, nil); err != nil {
			return nil, fmt.Errorf("create container %s: %w", cfg.Container, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("container %s: %w", cfg.Container, err)
	}
	return &Driver{cfg: cfg, conn: conn, bufs: partbuf.New(int(cfg.ChunkSize), 4)}, nil
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return driverName }

// object names the object holding the file at path.
func (d *Driver) object(path string) string {
	if path == "/" {
		return d.cfg.prefix + "files"
	}
	return d.cfg.prefix + "files" + path
}

// dirPrefix is the object name prefix of the files below dir.
func (d *Driver) dirPrefix(dir string) string { return d.object(dir) + "/" }

// stateObject names the state object of an unfinished write to path.
func (d *Driver) stateObject(path string) string { return d.cfg.prefix + "uploads" + path }

func relPath(dir, prefix, name string) (string, bool) {
	rel, ok := strings.CutPrefix(name, prefix)
	if !ok || !driver.ValidPath("/"+rel) {
		return "", false
	}
	return driver.Join(dir, rel), true
}

func pathErr(op, path string, err error) error {
	return &driver.PathError{Op: op, Path: path, Driver: driverName, Err: err}
}

func isNotFound(err error) bool { return errors.Is(err, swift.ObjectNotFound) }

func mapErr(op, path string, err error) error {
	if isNotFound(err) {
		return pathErr(op, path, driver.ErrNotFound)
	}
	return pathErr(op, path, err)
}

func statusIs(err error, code int) bool {
	var se *swift.Error
	return errors.As(err, &se) && se.StatusCode == code
}

// Reader implements driver.Driver. Swift serves a large object's segments
// as one body, ranges included.
func (d *Driver) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, pathErr("reader", path, driver.ErrInvalidOffset)
	}
	var h swift.Headers
	if offset > 0 {
		h = swift.Headers{"Range": fmt.Sprintf("bytes=%d-", offset)}
	}
	f, _, err := d.conn.ObjectOpen(ctx, d.cfg.Container, d.object(path), false, h)
	if err == nil {
		return f, nil
	}
	if !statusIs(err, http.StatusRequestedRangeNotSatisfiable) {
		return nil, mapErr("reader", path, err)
	}
	fi, err := d.Stat(ctx, path)
	if err != nil {
		return nil, err
	}
	if offset == fi.Size {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	return nil, pathErr("reader", path, driver.ErrInvalidOffset)
}

// PutContent implements driver.ContentPutter with one PUT.
func (d *Driver) PutContent(ctx context.Context, path string, content []byte) error {
	old, _ := d.manifestOf(ctx, d.object(path))
	if err := d.put(ctx, d.object(path), content, nil); err != nil {
		return mapErr("putcontent", path, err)
	}
	d.dropSegments(ctx, old)
	return nil
}

// Create implements driver.Creator as far as Swift allows: a PUT
// conditioned on If-None-Match: *, which the object server refuses with
// 412 when the object exists, then a read back, which the loser of two
// overlapping creates finds holding the winner's content (the newest
// write wins in Swift). Two creates that overlap so closely that both
// read back their own content before either write lands both succeed:
// Swift has no atomic create (see RacyCreate). Not retried: a retry of a
// create that won but whose answer was lost would report it lost.
func (d *Driver) Create(ctx context.Context, path string, content []byte) error {
	var err error
	for try := 0; try <= retries; try++ {
		body := &detachable{r: bytes.NewReader(content)}
		_, err = d.conn.ObjectPut(ctx, d.cfg.Container, d.object(path), body, false, "", contentType, swift.Headers{"If-None-Match": "*"})
		body.detach()
		// The proxy answers 412 before reading the body and closes the
		// connection, which a client still sending sees as a broken
		// pipe instead of the answer: sent again, the create gets its
		// 412, and the read back below tells a lost answer to a create
		// that won from a create that lost.
		var se *swift.Error
		if err == nil || errors.As(err, &se) || ctx.Err() != nil {
			break
		}
	}
	if err != nil && !statusIs(err, http.StatusPreconditionFailed) {
		return mapErr("create", path, err)
	}
	got, err := d.conn.ObjectGetBytes(ctx, d.cfg.Container, d.object(path))
	if err != nil {
		return mapErr("create", path, err)
	}
	if !bytes.Equal(got, content) {
		return pathErr("create", path, driver.ErrExist)
	}
	return nil
}

// RacyCreate implements driver.RacyCreator: two Creates racing may both
// succeed on Swift.
func (d *Driver) RacyCreate() bool { return true }

// Stat implements driver.Driver.
func (d *Driver) Stat(ctx context.Context, path string) (driver.FileInfo, error) {
	if path != "/" {
		info, _, err := d.conn.Object(ctx, d.cfg.Container, d.object(path))
		if err == nil {
			return driver.FileInfo{Path: path, Size: info.Bytes, ModTime: info.LastModified}, nil
		}
		if !isNotFound(err) {
			return driver.FileInfo{}, mapErr("stat", path, err)
		}
		objs, err := d.conn.ObjectNames(ctx, d.cfg.Container, &swift.ObjectsOpts{Prefix: d.dirPrefix(path), Limit: 1})
		if err != nil {
			return driver.FileInfo{}, mapErr("stat", path, err)
		}
		if len(objs) == 0 {
			return driver.FileInfo{}, pathErr("stat", path, driver.ErrNotFound)
		}
	}
	return driver.FileInfo{Path: path, IsDir: true}, nil
}

// List implements driver.Driver with a delimited, paginated listing.
func (d *Driver) List(ctx context.Context, dir string) ([]string, error) {
	prefix := d.dirPrefix(dir)
	objs, err := d.conn.ObjectsAll(ctx, d.cfg.Container, &swift.ObjectsOpts{Prefix: prefix, Delimiter: '/'})
	if err != nil && !errors.Is(err, swift.ContainerNotFound) {
		return nil, mapErr("list", dir, err)
	}
	out := []string{}
	for _, o := range objs {
		if child, ok := relPath(dir, prefix, strings.TrimSuffix(o.Name, "/")); ok {
			out = append(out, child)
		}
	}
	if len(out) == 0 && dir != "/" {
		return nil, pathErr("list", dir, driver.ErrNotFound)
	}
	return out, nil
}

// manifestOf returns the segment prefix a DLO manifest at name points to
// within our container, or "" for a plain object.
func (d *Driver) manifestOf(ctx context.Context, name string) (string, error) {
	_, h, err := d.conn.Object(ctx, d.cfg.Container, name)
	if err != nil {
		return "", err
	}
	m := h["X-Object-Manifest"]
	if m == "" {
		return "", nil
	}
	c, prefix, _ := strings.Cut(m, "/")
	if c != d.cfg.Container || !strings.HasPrefix(prefix, d.cfg.prefix+"segments/") {
		return "", nil // not ours to delete
	}
	return prefix, nil
}

// dropSegments deletes the segments below prefix, best effort: a leftover
// segment wastes space but breaks nothing.
func (d *Driver) dropSegments(ctx context.Context, prefix string) {
	if prefix == "" {
		return
	}
	names, err := d.conn.ObjectNamesAll(ctx, d.cfg.Container, &swift.ObjectsOpts{Prefix: prefix})
	if err == nil {
		_ = d.deleteNames(ctx, names)
	}
}

// Move implements driver.Driver. A large object moves by writing a new
// manifest for the same segments; a plain one by a server-side copy.
func (d *Driver) Move(ctx context.Context, src, dst string) error {
	_, h, err := d.conn.Object(ctx, d.cfg.Container, d.object(src))
	if err != nil {
		return mapErr("move", src, err)
	}
	replaced, _ := d.manifestOf(ctx, d.object(dst))
	if m := h["X-Object-Manifest"]; m != "" {
		if err := d.put(ctx, d.object(dst), nil, swift.Headers{"X-Object-Manifest": m}); err != nil {
			return mapErr("move", dst, err)
		}
		if strings.HasSuffix(m, "/"+replaced) {
			replaced = "" // the same segments
		}
	} else if _, err := d.conn.ObjectCopy(ctx, d.cfg.Container, d.object(src), d.cfg.Container, d.object(dst), nil); err != nil {
		return mapErr("move", src, err)
	}
	if err := d.conn.ObjectDelete(ctx, d.cfg.Container, d.object(src)); err != nil && !isNotFound(err) {
		return mapErr("move", src, err)
	}
	d.dropSegments(ctx, replaced)
	return nil
}
