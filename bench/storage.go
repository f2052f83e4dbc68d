package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// storageRoot is an empty place for one server to store into: its
// storage config block and what removes it.
type storageRoot struct {
	yaml    string
	cleanup func()
}

// newStorage makes a fresh storage root of the harness's backend: a
// directory on the work disk, or a MinIO of its own (four drives in one
// directory, erasure-coded as in production) with an empty bucket.
func (h *harness) newStorage(ctx context.Context) (*storageRoot, error) {
	dir, err := os.MkdirTemp(h.work, "data-")
	if err != nil {
		return nil, err
	}
	rm := func() { _ = os.RemoveAll(dir) }
	if h.backend == "filesystem" {
		return &storageRoot{
			yaml:    fmt.Sprintf("  filesystem:\n    rootdirectory: %s", dir),
			cleanup: rm,
		}, nil
	}
	m, err := startMinIO(ctx, h.minio, dir)
	if err != nil {
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
    rootdirectory: /`, minioUser, minioPassword, m.endpoint),
		cleanup: func() { m.stop(); rm() },
	}, nil
}

const (
	minioUser     = "berthbench"
	minioPassword = "berthbench-secret"
)

type minio struct {
	endpoint string
	cmd      *exec.Cmd
	done     chan struct{}
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
	logf, err := os.Create(filepath.Join(dir, "minio.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "server", "--address", addr, "--console-address", console, dir+"/d{1...4}")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+minioUser, "MINIO_ROOT_PASSWORD="+minioPassword,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start minio: %w", err)
	}
	m := &minio{endpoint: "http://" + addr, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(m.done) }()
	if err := waitHTTP(ctx, m.endpoint+"/minio/health/ready", m.done, 60*time.Second); err != nil {
		m.stop()
		return nil, fmt.Errorf("minio: %w\n%s", err, tail(filepath.Join(dir, "minio.log")))
	}
	c := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(m.endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(minioUser, minioPassword, ""),
	})
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := c.CreateBucket(cctx, &s3.CreateBucketInput{Bucket: aws.String("registry")}); err != nil {
		m.stop()
		return nil, fmt.Errorf("minio: create bucket: %w", err)
	}
	return m, nil
}

func (m *minio) stop() {
	select {
	case <-m.done:
		return
	default:
	}
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.done
	}
}
