// Package gcs is Berth's Google Cloud Storage driver, registered as "gcs".
// It reads the same configuration keys as CNCF Distribution's gcs driver and
// keeps files at the same object names, so either program serves a bucket
// the other wrote.
//
// Writers send full chunks as temporary objects, several at a time, which
// Commit composes into the file (compose.go); with writeconcurrency 1 they
// stream through one GCS resumable upload session instead. A writer closed
// without Commit leaves a small sidecar object (see sidecarKey) holding the
// components or the session URI, the bytes stored and a short tail, so
// another instance can resume the upload. Nothing appears at the file's own
// name until Commit composes the components or finalizes the session.
//
// The driver knows nothing of blobs or manifests: it stores bytes at paths.
package gcs

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/partbuf"
	"github.com/berth-registry/berth/storage/driver/internal/ranged"
)

const (
	driverName = "gcs"

	// minChunk is GCS's granularity for every chunk of a resumable upload
	// but the last.
	minChunk = 256 << 10
	// defaultChunkSize follows Distribution's code (its documentation
	// still says 5 MiB): fewer round trips per blob for 16 MiB of memory per
	// open writer.
	defaultChunkSize      = 16 << 20
	defaultMaxConcurrency = 50
	minConcurrency        = 25

	// defaultWriteConcurrency and defaultWriteMemory are S3's: four
	// streams carry four times what one does over a long link.
	defaultWriteConcurrency = 4
	maxWriteConcurrency     = 64
	defaultWriteMemory      = 64 << 20

	blobContentType = "application/octet-stream"
	// legacySessionContentType marks the objects Distribution's driver
	// leaves at a path while an upload is unfinished. They are not files.
	legacySessionContentType = "application/x-docker-upload-session"

	// redirectExpiry is how long a signed URL stays valid.
	redirectExpiry = 20 * time.Minute
)

func init() {
	driver.Register(driverName, func(ctx context.Context, p driver.Params) (driver.Driver, error) {
		return FromParams(ctx, p)
	})
	driver.RegisterCheck(driverName, func(params driver.Params) error {
		p := defaultParams()
		if err := driver.DecodeParams(params, &p); err != nil {
			return err
		}
		_, err := p.check()
		return err
	})
}

// Params is the driver's configuration section.
type Params struct {
	// Bucket must exist before the driver starts.
	Bucket string `yaml:"bucket"`
	// Keyfile is the path of a service account key in JSON.
	Keyfile string `yaml:"keyfile"`
	// Credentials is a service account key given inline, the JSON key's
	// fields as a map (type, project_id, private_key_id, private_key, …).
	Credentials map[string]any `yaml:"credentials"`
	// RootDirectory prefixes every object name.
	RootDirectory string `yaml:"rootdirectory"`
	// ChunkSize is the size of each resumable upload chunk and of the
	// writer's buffer: a multiple of 256 KiB.
	ChunkSize int `yaml:"chunksize"`
	// UserAgent replaces the client's User-Agent header.
	UserAgent string `yaml:"useragent"`
	// MaxConcurrency bounds the requests in flight to GCS (at least 25).
	MaxConcurrency int `yaml:"maxconcurrency"`
	// Endpoint is a GCS emulator's base URL ("http://127.0.0.1:4443"),
	// as STORAGE_EMULATOR_HOST gives it; requests are then unauthenticated
	// unless keyfile or credentials is set. Not in Distribution.
	Endpoint string `yaml:"endpoint"`
	// WriteConcurrency is how many chunks of one write are uploaded at a
	// time, as temporary objects composed at Commit (see compose.go); 1
	// streams one resumable upload instead. Not in Distribution.
	WriteConcurrency int `yaml:"writeconcurrency"`
	// WriteMemory is the bytes of chunk buffers all writers together may
	// hold beyond the one each has. Not in Distribution.
	WriteMemory *int64 `yaml:"writememory"`
	// ReadConcurrency is how many chunksize ranges of one read are
	// fetched at a time (see package ranged); 1 reads with one GET. Not
	// in Distribution.
	ReadConcurrency int `yaml:"readconcurrency"`
	// ReadMemory is the bytes of range buffers all readers together may
	// hold. Not in Distribution.
	ReadMemory *int64 `yaml:"readmemory"`
}

func defaultParams() Params {
	return Params{ChunkSize: defaultChunkSize, MaxConcurrency: defaultMaxConcurrency, WriteConcurrency: defaultWriteConcurrency,
		ReadConcurrency: ranged.DefaultConcurrency}
}

// FromParams decodes a configuration section and builds the driver.
func FromParams(ctx context.Context, params driver.Params) (*Driver, error) {
	p := defaultParams()
	if err := driver.DecodeParams(params, &p); err != nil {
		return nil, err
	}
	return New(ctx, p)
}

// Driver stores files as objects in one GCS bucket.
type Driver struct {
	bucketName string
	hc         *http.Client // authenticated
	apiBase    string       // ".../storage/v1/b/<bucket>"
	uploadBase string       // ".../upload/storage/v1/b/<bucket>/o"
	prefix     string       // rootdirectory with a trailing slash, or ""
	chunkSize  int

	// writeConcurrency is the chunks of one write in flight; with 1,
	// writes stream through a resumable session.
	writeConcurrency int
	// memory counts the chunk buffers writers hold, each one's own
	// counted once it wrote, when there is room (writememory / chunksize
	// of them).
	memory *semaphore.Weighted
	// bufs holds the chunk buffers of composite writes and parallel
	// reads.
	bufs *partbuf.Pool
	// reads fetches the ranges of parallel reads (readconcurrency,
	// readmemory).
	reads *ranged.Reads

	// signer signs redirect URLs; nil without a service account key.
	signer *signer
}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.Walker        = (*Driver)(nil)
	_ driver.Redirector    = (*Driver)(nil)
	_ driver.ContentPutter = (*Driver)(nil)
	_ driver.UploadLister  = (*Driver)(nil)
)

// serviceAccount is the part of a JSON key that signing needs.
type serviceAccount struct {
	Type        string `json:"type"`
	ClientEmail string `json:"client_email"`
	PrivateKey  string `json:"private_key"`
}

// New builds a driver from decoded parameters.
func New(ctx context.Context, p Params) (*Driver, error) {
	c, err := p.check()
	if err != nil {
		return nil, err
	}
	if p.MaxConcurrency < minConcurrency {
		p.MaxConcurrency = minConcurrency
	}
	hc, err := newHTTPClient(ctx, p, c)
	if err != nil {
		return nil, err
	}
	// GCS's own endpoint, or the emulator's.
	ep := &url.URL{Scheme: "https", Host: "storage.googleapis.com"}
	if c.emulator != nil {
		ep = &url.URL{Scheme: c.emulator.Scheme, Host: c.emulator.Host}
	}
	d := &Driver{
		bucketName: p.Bucket,
		hc:         hc,
		apiBase:    ep.JoinPath("storage", "v1", "b").String() + "/" + url.PathEscape(p.Bucket),
		uploadBase: ep.JoinPath("upload", "storage", "v1", "b").String() + "/" + url.PathEscape(p.Bucket) + "/o",
		prefix:     rootPrefix(p.RootDirectory),
		chunkSize:  p.ChunkSize,

		writeConcurrency: p.WriteConcurrency,
		memory:           semaphore.NewWeighted(c.writeBuffers),
		bufs:             partbuf.New(p.ChunkSize, 4),
	}
	if c.key != nil {
		d.signer = &signer{email: c.sa.ClientEmail, key: c.key, host: ep.Host, insecure: ep.Scheme == "http"}
	}
	d.reads = ranged.New(d.bufs, p.ReadConcurrency, c.readBuffers)
	return d, nil
}

// checked is what check derives from the parameters.
type checked struct {
	keyJSON  []byte
	sa       serviceAccount
	key      *rsa.PrivateKey // sa's
	emulator *url.URL
	// writeBuffers is how many chunk buffers (their own included) all
	// writers may hold; readBuffers how many all readers may.
	writeBuffers int64
	readBuffers  int64
}

// check validates the parameters and reads the key file, without any
// network: New and `berth config check` share it.
func (p Params) check() (checked, error) {
	var c checked
	if p.Bucket == "" {
		return c, &driver.ParamError{Key: "bucket", Msg: "required"}
	}
	if p.ChunkSize < minChunk || p.ChunkSize%minChunk != 0 {
		return c, &driver.ParamError{Key: "chunksize",
			Msg: fmt.Sprintf("%d is not a positive multiple of %d (256 KiB)", p.ChunkSize, minChunk)}
	}
	if p.WriteConcurrency < 1 || p.WriteConcurrency > maxWriteConcurrency {
		return c, &driver.ParamError{Key: "writeconcurrency",
			Msg: fmt.Sprintf("%d is not between 1 and %d", p.WriteConcurrency, maxWriteConcurrency)}
	}
	mem := int64(defaultWriteMemory)
	if p.WriteMemory != nil {
		if mem = *p.WriteMemory; mem < 0 {
			return c, &driver.ParamError{Key: "writememory", Msg: fmt.Sprintf("%d is negative", mem)}
		}
	}
	c.writeBuffers = mem / int64(p.ChunkSize)
	if p.ReadConcurrency < 1 || p.ReadConcurrency > ranged.MaxConcurrency {
		return c, &driver.ParamError{Key: "readconcurrency",
			Msg: fmt.Sprintf("%d is not between 1 and %d", p.ReadConcurrency, ranged.MaxConcurrency)}
	}
	readMem := int64(ranged.DefaultMemory)
	if p.ReadMemory != nil {
		if readMem = *p.ReadMemory; readMem < 0 {
			return c, &driver.ParamError{Key: "readmemory", Msg: fmt.Sprintf("%d is negative", readMem)}
		}
	}
	c.readBuffers = readMem / int64(p.ChunkSize)
	if p.Keyfile != "" && len(p.Credentials) > 0 {
		return c, &driver.ParamError{Key: "credentials", Msg: "give keyfile or credentials, not both"}
	}
	switch {
	case p.Keyfile != "":
		b, err := os.ReadFile(p.Keyfile)
		if err != nil {
			return c, &driver.ParamError{Key: "keyfile", Msg: err.Error()}
		}
		c.keyJSON = b
	case len(p.Credentials) > 0:
		b, err := json.Marshal(p.Credentials)
		if err != nil {
			return c, &driver.ParamError{Key: "credentials", Msg: err.Error()}
		}
		c.keyJSON = b
	}
	if c.keyJSON != nil {
		if err := json.Unmarshal(c.keyJSON, &c.sa); err != nil {
			return c, &driver.ParamError{Key: keyParam(p), Msg: "not a JSON service account key: " + err.Error()}
		}
		if c.sa.Type != "service_account" || c.sa.ClientEmail == "" || c.sa.PrivateKey == "" {
			return c, &driver.ParamError{Key: keyParam(p),
				Msg: `need a service account key (type "service_account" with client_email and private_key)`}
		}
		k, err := parseKey(c.sa.PrivateKey)
		if err != nil {
			return c, &driver.ParamError{Key: keyParam(p), Msg: err.Error()}
		}
		c.key = k
	}
	emulator := p.Endpoint
	if emulator == "" {
		// As Google's client libraries do.
		emulator = os.Getenv("STORAGE_EMULATOR_HOST")
	}
	if emulator != "" {
		u, err := emulatorURL(emulator)
		if err != nil {
			return c, &driver.ParamError{Key: "endpoint", Msg: err.Error()}
		}
		c.emulator = u
	}
	return c, nil
}

func keyParam(p Params) string {
	if p.Keyfile != "" {
		return "keyfile"
	}
	return "credentials"
}

// emulatorURL accepts "host:port" (as STORAGE_EMULATOR_HOST is usually
// given) or a URL.
func emulatorURL(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("%q is not an http(s) URL", s)
	}
	u.Path, u.RawQuery = "", ""
	return u, nil
}

func rootPrefix(root string) string {
	root = strings.Trim(root, "/")
	if root == "" {
		return ""
	}
	return root + "/"
}

// Name returns "gcs".
func (d *Driver) Name() string { return driverName }

// key maps a driver path to its object name.
func (d *Driver) key(path string) string {
	return d.prefix + strings.TrimPrefix(path, "/")
}

// dirKey is the prefix of every object below the directory path.
func (d *Driver) dirKey(path string) string {
	if path == "/" {
		return d.prefix
	}
	return d.key(path) + "/"
}

// path maps an object name (or a listing prefix) below the root back to a
// driver path.
func (d *Driver) path(key string) string {
	return "/" + strings.Trim(strings.TrimPrefix(key, d.prefix), "/")
}

// reservedDir holds Berth's own objects below the root: "~" cannot appear
// in a driver path, so no file or directory collides with it, and it sits
// directly below the root so that List and Walk skip it in one place. The
// S3 driver uses the same name.
const reservedDir = "~berth"

// sidecarDir holds the state of unfinished writes.
const sidecarDir = reservedDir + "/uploads"

// partsDir holds the temporary objects of unfinished composite writes:
// those of the file at path are below partsDir(path), and so are those of
// every file below the directory path.
func (d *Driver) partsDir(path string) string {
	return d.prefix + reservedDir + "/parts" + path + "/"
}

// sidecarKey is the object that records the unfinished write at path.
func (d *Driver) sidecarKey(path string) string {
	return d.prefix + sidecarDir + path
}

// isSidecar reports whether an object name or listing prefix belongs to
// the reserved tree.
func (d *Driver) isSidecar(key string) bool {
	return strings.HasPrefix(key, d.prefix+reservedDir+"/")
}

func notFound(op, path string) error {
	return &driver.PathError{Op: op, Path: path, Driver: driverName, Err: driver.ErrNotFound}
}

// isNotExist reports whether err is GCS saying the object is not there.
func isNotExist(err error) bool {
	return httpStatus(err) == http.StatusNotFound
}

// PartSize implements driver.PartSizer: GCS takes resumable chunks in
// multiples of 256 KiB, and a Close keeps the shorter tail aside.
func (d *Driver) PartSize() int64 { return minChunk }
