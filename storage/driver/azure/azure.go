// Package azure is the Berth storage driver for Azure Blob Storage, and for
// what speaks its API (Azurite, Azure Stack, sovereign clouds). Files are
// block blobs in one container, named by their path below rootdirectory, as
// CNCF Distribution names them, so a container written by either serves the
// other. A write stages blocks on the file's own blob as the bytes arrive;
// the blob becomes visible only when Commit commits the block list.
package azure

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"golang.org/x/sync/semaphore"

	"github.com/berth-registry/berth/storage/driver"
	"github.com/berth-registry/berth/storage/driver/internal/partbuf"
	"github.com/berth-registry/berth/storage/driver/internal/ranged"
)

const driverName = "azure"

func init() {
	driver.Register(driverName, func(ctx context.Context, params driver.Params) (driver.Driver, error) {
		return New(ctx, params)
	})
	driver.RegisterCheck(driverName, func(params driver.Params) error {
		_, err := newConfig(params)
		return err
	})
}

// Driver stores files as block blobs in one Azure container.
type Driver struct {
	cfg *config
	c   *container.Client
	// svc is set with token credentials, to fetch the user delegation key
	// that signs redirect URLs.
	svc *service.Client
	udk *delegationKey
	// bufs holds the block buffers of cfg.ChunkSize.
	bufs *partbuf.Pool
	// memory counts the block buffers writers hold beyond their first
	// (writememory).
	memory *semaphore.Weighted
	// reads fetches the ranges of parallel reads (readconcurrency,
	// readmemory).
	reads *ranged.Reads
}

var (
	_ driver.Walker        = (*Driver)(nil)
	_ driver.Redirector    = (*Driver)(nil)
	_ driver.ContentPutter = (*Driver)(nil)
	_ driver.UploadLister  = (*Driver)(nil)
)

// New builds the driver from its configuration section and creates the
// container if it is missing, so a wrong key or an unreachable service
// stops Berth at start.
func New(ctx context.Context, params driver.Params) (*Driver, error) {
	cfg, err := newConfig(params)
	if err != nil {
		return nil, err
	}
	opts := clientOptions(cfg)
	d := &Driver{cfg: cfg, udk: &delegationKey{}, bufs: partbuf.New(int(cfg.ChunkSize), 4), memory: semaphore.NewWeighted(cfg.writeBuffers)}
	d.reads = ranged.New(d.bufs, cfg.ReadConcurrency, cfg.readBuffers)
	containerURL := strings.TrimRight(cfg.serviceURL, "/") + "/" + cfg.Container
	switch {
	case cfg.ConnectionString != "":
		d.c, err = container.NewClientFromConnectionString(cfg.ConnectionString, cfg.Container, &container.ClientOptions{ClientOptions: opts})
	case cfg.credType == credSharedKey:
		var cred *container.SharedKeyCredential
		cred, err = container.NewSharedKeyCredential(cfg.AccountName, cfg.AccountKey)
		if err != nil {
			return nil, fmt.Errorf("accountkey: %w", err)
		}
		d.c, err = container.NewClientWithSharedKeyCredential(containerURL, cred, &container.ClientOptions{ClientOptions: opts})
	default:
		var cred azcore.TokenCredential
		if cfg.credType == credClientSecret {
			cr := cfg.Credentials
			cred, err = azidentity.NewClientSecretCredential(cr.TenantID, cr.ClientID, cr.Secret, &azidentity.ClientSecretCredentialOptions{ClientOptions: opts})
		} else {
			cred, err = azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: opts})
		}
		if err != nil {
			return nil, fmt.Errorf("credentials: %w", err)
		}
		d.c, err = container.NewClient(containerURL, cred, &container.ClientOptions{ClientOptions: opts})
		if err == nil {
			d.svc, err = service.NewClient(cfg.serviceURL, cred, &service.ClientOptions{ClientOptions: opts})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("azure client: %w", err)
	}
	if err := d.ensureContainer(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// ensureContainer creates the container when it is missing, as
// Distribution's driver does, so a fresh account works with the same
// config. Credentials that may not create containers (a container-scoped
// SAS, a reader role) are fine as long as the container exists.
func (d *Driver) ensureContainer(ctx context.Context) error {
	_, err := d.c.Create(ctx, nil)
	if err == nil || bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return nil
	}
	if _, perr := d.c.GetProperties(ctx, nil); perr == nil {
		return nil
	}
	return fmt.Errorf("container %s: %w", d.cfg.Container, err)
}

// clientOptions hands retries of throttled and failed requests to the SDK,
// which backs off exponentially and honours Retry-After.
func clientOptions(cfg *config) azcore.ClientOptions {
	opts := azcore.ClientOptions{
		Retry: policy.RetryOptions{MaxRetries: int32(cfg.MaxRetries)},
	}
	if cfg.SkipVerify {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
		opts.Transport = &http.Client{Transport: tr}
	}
	return opts
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return driverName }

// name maps a driver path to a blob name.
func (d *Driver) name(path string) string {
	if path == "/" {
		return d.cfg.root
	}
	return d.cfg.root + path[1:]
}

// dirPrefix is the blob name prefix of everything below dir.
func (d *Driver) dirPrefix(dir string) string {
	if dir == "/" {
		return d.cfg.root
	}
	return d.name(dir) + "/"
}

// path maps a blob name below prefix back to a path below dir, reporting
// false for names no driver path maps to (written by other tools).
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

// mapErr turns a missing blob into driver.ErrNotFound. A missing container
// stays an error of its own: it is a configuration mistake, not an empty
// store.
func mapErr(op, path string, err error) error {
	if isNotFound(err) {
		return pathErr(op, path, driver.ErrNotFound)
	}
	return pathErr(op, path, err)
}

func isNotFound(err error) bool {
	return bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ResourceNotFound, bloberror.CannotVerifyCopySource)
}

// PutContent implements driver.ContentPutter with one Put Blob request.
func (d *Driver) PutContent(ctx context.Context, path string, content []byte) error {
	bb := d.c.NewBlockBlobClient(d.name(path))
	_, err := bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(content)), nil)
	if err != nil {
		return mapErr("putcontent", path, err)
	}
	return nil
}

// Create implements driver.Creator with a Put Blob conditioned on
// If-None-Match: *, which Azure refuses with 409 BlobAlreadyExists (or
// 412) when the blob exists.
func (d *Driver) Create(ctx context.Context, path string, content []byte) error {
	bb := d.c.NewBlockBlobClient(d.name(path))
	anyTag := azcore.ETagAny
	_, err := bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(content)), &blockblob.UploadOptions{
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: &anyTag}},
	})
	if bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet) {
		return pathErr("create", path, driver.ErrExist)
	}
	if err != nil {
		return mapErr("create", path, err)
	}
	return nil
}

// Stat implements driver.Driver. A path is a directory while some blob
// has it as a prefix; the root always is one.
func (d *Driver) Stat(ctx context.Context, path string) (driver.FileInfo, error) {
	if path != "/" {
		props, err := d.c.NewBlobClient(d.name(path)).GetProperties(ctx, nil)
		if err == nil {
			fi := driver.FileInfo{Path: path}
			if props.ContentLength != nil {
				fi.Size = *props.ContentLength
			}
			if props.LastModified != nil {
				fi.ModTime = *props.LastModified
			}
			return fi, nil
		}
		if !isNotFound(err) {
			return driver.FileInfo{}, mapErr("stat", path, err)
		}
		prefix := d.dirPrefix(path)
		pager := d.c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix, MaxResults: ptr(int32(1))})
		page, err := pager.NextPage(ctx)
		if err != nil {
			return driver.FileInfo{}, mapErr("stat", path, err)
		}
		if len(page.Segment.BlobItems) == 0 {
			return driver.FileInfo{}, pathErr("stat", path, driver.ErrNotFound)
		}
	}
	return driver.FileInfo{Path: path, IsDir: true}, nil
}

// List implements driver.Driver with a paginated hierarchical listing.
func (d *Driver) List(ctx context.Context, dir string) ([]string, error) {
	prefix := d.dirPrefix(dir)
	pager := d.c.NewListBlobsHierarchyPager("/", &container.ListBlobsHierarchyOptions{Prefix: &prefix})
	out := []string{}
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, mapErr("list", dir, err)
		}
		for _, p := range page.Segment.BlobPrefixes {
			if p.Name != nil {
				if child, ok := relPath(dir, prefix, strings.TrimSuffix(*p.Name, "/")); ok {
					out = append(out, child)
				}
			}
		}
		for _, b := range page.Segment.BlobItems {
			if b.Name != nil {
				if child, ok := relPath(dir, prefix, *b.Name); ok {
					out = append(out, child)
				}
			}
		}
	}
	if len(out) == 0 && dir != "/" {
		return nil, pathErr("list", dir, driver.ErrNotFound)
	}
	return out, nil
}

// Move implements driver.Driver: a server-side copy, waited for, then the
// source's deletion. Within one account Azure copies at once; a pending
// copy is polled max_retries times, retry_delay apart, growing linearly.
func (d *Driver) Move(ctx context.Context, src, dst string) error {
	srcURL := d.c.NewBlobClient(d.name(src)).URL()
	dc := d.c.NewBlobClient(d.name(dst))
	resp, err := dc.StartCopyFromURL(ctx, srcURL, nil)
	if err != nil {
		return mapErr("move", src, err)
	}
	status := blob.CopyStatusTypeSuccess
	if resp.CopyStatus != nil {
		status = *resp.CopyStatus
	}
	for try := 1; status == blob.CopyStatusTypePending; try++ {
		if try > d.cfg.MaxRetries {
			if resp.CopyID != nil {
				_, _ = dc.AbortCopyFromURL(ctx, *resp.CopyID, nil)
			}
			return pathErr("move", src, fmt.Errorf("copy to %s still pending after %d polls", dst, d.cfg.MaxRetries))
		}
		select {
		case <-ctx.Done():
			return pathErr("move", src, ctx.Err())
		case <-time.After(d.cfg.RetryDelay * time.Duration(try)):
		}
		props, err := dc.GetProperties(ctx, nil)
		if err != nil {
			return mapErr("move", src, err)
		}
		if props.CopyStatus != nil {
			status = *props.CopyStatus
		}
		if status == blob.CopyStatusTypeFailed || status == blob.CopyStatusTypeAborted {
			desc := ""
			if props.CopyStatusDescription != nil {
				desc = *props.CopyStatusDescription
			}
			return pathErr("move", src, fmt.Errorf("copy to %s %s: %s", dst, status, desc))
		}
	}
	if _, err := d.c.NewBlobClient(d.name(src)).Delete(ctx, nil); err != nil && !isNotFound(err) {
		return mapErr("move", src, err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

var errClosed = errors.New("writer already closed, committed or cancelled")
