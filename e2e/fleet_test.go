package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
	"github.com/opencontainers/go-digest"
)

// testImage is an image a test pushes by hand, as a client does: HEAD each
// blob, upload only those the registry says it lacks, then PUT the
// manifest. That HEAD is where a stale cache turns into a broken push.
type testImage struct {
	blobs    [][]byte // the config, then the layers
	manifest []byte
	digest   digest.Digest
}

// newTestImage makes an image with one layer per string: a gzipped tar
// holding one file with that content, as crane validate expects.
func newTestImage(t *testing.T, layers ...string) testImage {
	t.Helper()
	var gz [][]byte
	var diffIDs []string
	for i, l := range layers {
		var tarred bytes.Buffer
		tw := tar.NewWriter(&tarred)
		hdr := &tar.Header{Name: fmt.Sprintf("file%d", i), Mode: 0o644, Size: int64(len(l)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(l)); err != nil {
			t.Fatal(err)
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		diffIDs = append(diffIDs, digest.FromBytes(tarred.Bytes()).String())
		var zipped bytes.Buffer
		zw := gzip.NewWriter(&zipped)
		if _, err := zw.Write(tarred.Bytes()); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		gz = append(gz, zipped.Bytes())
	}
	ids, _ := json.Marshal(diffIDs)
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":%s},"config":{}}`, ids))
	im := testImage{blobs: [][]byte{cfg}}
	type desc struct {
		MediaType string        `json:"mediaType"`
		Digest    digest.Digest `json:"digest"`
		Size      int           `json:"size"`
	}
	m := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{
		SchemaVersion: 2,
		MediaType:     "application/vnd.oci.image.manifest.v1+json",
		Config:        desc{"application/vnd.oci.image.config.v1+json", digest.FromBytes(cfg), len(cfg)},
	}
	for _, b := range gz {
		im.blobs = append(im.blobs, b)
		m.Layers = append(m.Layers, desc{"application/vnd.oci.image.layer.v1.tar+gzip", digest.FromBytes(b), len(b)})
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	im.manifest, im.digest = b, digest.FromBytes(b)
	return im
}

func (im testImage) layer(i int) digest.Digest { return digest.FromBytes(im.blobs[i+1]) }

// push pushes the image's blobs and manifest through base and returns the
// manifest PUT's answer; a blob upload that fails fails the test.
func (im testImage) push(t *testing.T, base, repo, tag string) response {
	t.Helper()
	res, err := im.tryPush(base, repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// tryPush is push for any goroutine: a failed blob upload is an error.
func (im testImage) tryPush(base, repo, tag string) (response, error) {
	for _, b := range im.blobs {
		d := digest.FromBytes(b)
		res, err := send(http.MethodHead, base+"/v2/"+repo+"/blobs/"+d.String(), nil, nil)
		if err != nil {
			return response{}, err
		}
		if res.StatusCode == http.StatusOK {
			continue // "already exists": a client skips the upload
		}
		res, err = send(http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/?digest="+d.String(), b,
			map[string]string{"Content-Type": "application/octet-stream"})
		if err != nil {
			return response{}, err
		}
		if res.StatusCode != http.StatusCreated {
			return res, fmt.Errorf("upload of %s: %d %s", d, res.StatusCode, res.body)
		}
	}
	return send(http.MethodPut, base+"/v2/"+repo+"/manifests/"+tag, im.manifest,
		map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
}

// send is one request, its body read.
func send(method, url string, body []byte, hdr map[string]string) (response, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return response{}, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return response{res, b}, err
}

// validate runs crane validate --remote on repo@digest through every
// instance: every blob of the image is fetched and checked.
func validate(t *testing.T, crane, repo string, d digest.Digest, bases ...string) {
	t.Helper()
	for _, base := range bases {
		ref := strings.TrimPrefix(base, "http://") + "/" + repo + "@" + d.String()
		if err := testenv.RunQuiet(crane, "validate", "--insecure", "--remote", ref); err != nil {
			t.Errorf("an acknowledged push does not validate through %s: %v", base, err)
		}
	}
}
