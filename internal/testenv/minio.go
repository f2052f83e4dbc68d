package testenv

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// MinIO is a MinIO server on loopback, started by StartMinIO.
type MinIO struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
	// Client is signed with the root credentials and addresses buckets by
	// path, as tests inspecting the server directly need.
	Client *s3.Client
	// Process is the server, for tests that signal it (SIGSTOP freezes
	// it with its connections open).
	Process *Process
}

// StartMinIO starts MinIO (the pinned build from scripts/tools.sh) on a free
// loopback port with four drives in a temporary directory, waits until it answers,
// and stops it when the test ends. It starts in about a second, so tests
// start their own rather than share one.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin := Tool(t, "minio")
	m := &MinIO{
		AccessKey: "berthminio",
		SecretKey: "berthminio-secret",
		Region:    "us-east-1",
	}
	// Four drives in one directory put MinIO in erasure-coded mode, as in
	// production. On a single drive it answers a PUT with AccessDenied when
	// a concurrent delete prunes the parent directory (minio issue 15157),
	// which the driver suite's churn test hits about one run in three.
	startOnFreePorts(t, "minio", 2, http.DefaultClient, func(ports []int) (*Process, string) {
		addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
		m.Endpoint = "http://" + addr
		m.Process = StartProcess(t, bin,
			[]string{"server", "--address", addr, "--console-address", fmt.Sprintf("127.0.0.1:%d", ports[1]), t.TempDir() + "/d{1...4}"},
			[]string{
				"MINIO_ROOT_USER=" + m.AccessKey,
				"MINIO_ROOT_PASSWORD=" + m.SecretKey,
				"MINIO_BROWSER=off",
				"MINIO_UPDATE=off",
				"MINIO_CI_CD=1", // no terminal colours, no interactive hints
			})
		return m.Process, m.Endpoint + "/minio/health/ready"
	}, answersOK)
	m.Client = s3.New(s3.Options{
		Region:       m.Region,
		BaseEndpoint: aws.String(m.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
	})
	return m
}

// Bucket creates a fresh bucket named after the test and returns its name.
func (m *MinIO) Bucket(t testing.TB) string {
	t.Helper()
	name := bucketName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := m.Client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("testenv: create bucket %s: %v", name, err)
	}
	return name
}

// bucketName makes an S3 bucket name (3–63 of [a-z0-9-]) unique per test.
func bucketName(test string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(test) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	suffix := fmt.Sprintf("-%x", time.Now().UnixNano()&0xffffffff)
	if len(s) > 63-len(suffix) {
		s = s[:63-len(suffix)]
	}
	return strings.Trim(s, "-") + suffix
}
