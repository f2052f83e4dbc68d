package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// storageRoot is an empty place for one server to store into: its
// storage config block and what removes it.
type storageRoot struct {
	yaml    string
	cleanup func()
	// s3 reaches the bucket "registry" of an s3 root directly (not through
	// the shaped link), for setups that lay out content in bulk.
	s3 *s3.Client
	// put stores one object directly (not through the shaped link), for
	// the same setups; nil on the filesystem.
	put func(ctx context.Context, key string, body []byte) error
	// exists tells whether one object is there, directly (not through
	// the shaped link); nil on the filesystem.
	exists func(ctx context.Context, key string) (bool, error)
	// env is added to the server's environment (what Distribution's gcs
	// driver needs to find the emulator).
	env []string
	// shaped reaches it as the servers do, through the shaped link, for
	// measuring what the store itself takes to answer (a row's floor).
	shaped *s3.Client
	// shapedAzure is the same for an Azurite's container.
	shapedAzure *container.Client
}

// borrowed returns a view of st for a server on storage it does not own:
// the lender ends it. nil gives nil.
func (st *storageRoot) borrowed() *storageRoot {
	if st == nil {
		return nil
	}
	b := *st
	b.cleanup = func() {}
	return &b
}

// newStorage makes a fresh storage root of the harness's backend: a
// directory on the work disk, or a MinIO of its own (four drives in one
// directory, erasure-coded as in production) with an empty bucket, behind
// the run's WAN-shaped link unless WAN=off.
func (h *harness) newStorage(ctx context.Context) (*storageRoot, error) {
	dir, err := os.MkdirTemp(h.work, "data-")
	if err != nil {
		return nil, err
	}
	rm := func() { h.retire(dir) }
	if h.backend == "filesystem" {
		return &storageRoot{
			yaml:    fmt.Sprintf("  filesystem:\n    rootdirectory: %s", dir),
			cleanup: rm,
		}, nil
	}
	switch h.backend {
	case "azure", "gcs":
		newStore := h.newAzureStorage
		if h.backend == "gcs" {
			newStore = h.newGCSStorage
		}
		st, err := newStore(ctx, dir)
		if err != nil {
			rm()
			return nil, err
		}
		stop := st.cleanup
		st.cleanup = func() { stop(); rm() }
		return st, nil
	}
	m, err := startMinIO(ctx, h.minio, dir)
	if err != nil {
		rm()
		return nil, err
	}
	endpoint, unshape, err := h.link(ctx, filepath.Base(dir), m.endpoint)
	if err != nil {
		m.stop()
		rm()
		return nil, err
	}
	return &storageRoot{
		yaml: fmt.Sprintf(`  s3:
    accesskey: %s
    secretkey: %s
    region: us-east-1
    regionendpoint: %s
    forcepathstyle: true
    bucket: registry
    secure: false
    v4auth: true
    chunksize: 10485760
    rootdirectory: /`, minioUser, minioPassword, endpoint),
		cleanup: func() { unshape(); m.stop(); rm() },
		s3:      m.client,
		put: func(ctx context.Context, key string, body []byte) error {
			_, err := m.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("registry"), Key: aws.String(key), Body: bytes.NewReader(body)})
			return err
		},
		exists: func(ctx context.Context, key string) (bool, error) {
			_, err := m.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("registry"), Key: aws.String(key)})
			var nf *types.NotFound
			if errors.As(err, &nf) {
				return false, nil
			}
			return err == nil, err
		},
		shaped: minioClient(endpoint),
	}, nil
}

// retire takes a storage directory a server is done with out of the way
// without deleting its small files: they go to the harness's trash, which
// is removed when the run ends. On an ext4 without a journal (this
// machine's disk), every new inode skips the slots of inodes deleted in the
// last 60 s (360 s while their table block is dirty), one cache lookup per
// slot: deleting one measurement's ten thousand files made the next
// measurement's file creations, whichever server ran it, pay for them, and
// each round of the small-push scenario came out slower than the one
// before. Big files, few inodes and on the filesystem backend most of the
// bytes, are deleted at once so the trash never holds gigabytes (MinIO
// keeps objects under 2 MiB as smaller shards: a few hundred MiB a run).
func (h *harness) retire(dir string) {
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil && fi.Size() >= retireBigFile {
				_ = os.Remove(path)
			}
		}
		return nil
	})
	if err := os.MkdirAll(h.trash(), 0o755); err == nil {
		if os.Rename(dir, filepath.Join(h.trash(), filepath.Base(dir))) == nil {
			return
		}
	}
	_ = os.RemoveAll(dir)
}

// retireBigFile is the size from which retire deletes a file at once.
const retireBigFile = 1 << 20

// trash holds what retire set aside; it lives in the work directory.
func (h *harness) trash() string { return filepath.Join(h.work, "trash") }

const (
	minioUser     = "berthbench"
	minioPassword = "berthbench-secret"
)

type minio struct {
	*proc
	endpoint string
	client   *s3.Client
}

func startMinIO(ctx context.Context, bin, dir string) (*minio, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	console, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "server", "--address", addr, "--console-address", console, dir+"/d{1...4}")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+minioUser, "MINIO_ROOT_PASSWORD="+minioPassword,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	p, err := startProc("minio", cmd, filepath.Join(dir, "minio.log"))
	if err != nil {
		return nil, err
	}
	m := &minio{proc: p, endpoint: "http://" + addr}
	if err := waitHTTP(ctx, m.endpoint+"/minio/health/ready", m.done, 60*time.Second); err != nil {
		m.stop()
		return nil, fmt.Errorf("minio: %w\n%s", err, tail(filepath.Join(dir, "minio.log")))
	}
	m.client = minioClient(m.endpoint)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := m.client.CreateBucket(cctx, &s3.CreateBucketInput{Bucket: aws.String("registry")}); err != nil {
		m.stop()
		return nil, fmt.Errorf("minio: create bucket: %w", err)
	}
	return m, nil
}

// minioClient is an S3 client of the bench's MinIO at endpoint.
func minioClient(endpoint string) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(minioUser, minioPassword, ""),
	})
}
