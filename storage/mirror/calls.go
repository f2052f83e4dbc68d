package mirror

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/berth-registry/berth/storage"
	"github.com/opencontainers/go-digest"
)

// manifestAccept is every manifest type a client of the mirror may want:
// the mirror stores what the upstream sends and serves it as it is.
var manifestAccept = []string{strings.Join([]string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.oci.artifact.manifest.v1+json",
}, ", ")}

func pullScope(repo string) string { return "repository:" + repo + ":pull" }

// remoteManifest is a manifest as the upstream answered it.
type remoteManifest struct {
	digest    digest.Digest
	mediaType string
	payload   []byte // nil for a HEAD
}

// manifest asks the upstream for the manifest ref of repo: its digest with
// HEAD, the payload too with GET. storage.ErrManifestUnknown when the
// upstream has no such manifest.
func (u *upstream) manifest(ctx context.Context, repo, ref string, get bool) (remoteManifest, error) {
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	method := http.MethodHead
	if get {
		method = http.MethodGet
	}
	what := "manifest " + repo + ":" + ref
	resp, err := u.do(ctx, method, repo+"/manifests/"+ref, nil, http.Header{"Accept": manifestAccept}, pullScope(repo))
	if err != nil {
		return remoteManifest{}, err
	}
	defer drain(resp)
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return remoteManifest{}, &storage.Error{Err: storage.ErrManifestUnknown, Detail: fmt.Sprintf("%s has no %s", u, what)}
	case resp.StatusCode != http.StatusOK:
		return remoteManifest{}, u.statusError(what, resp)
	}
	m := remoteManifest{mediaType: resp.Header.Get("Content-Type")}
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" {
		d, err := digest.Parse(h)
		if err != nil {
			return remoteManifest{}, u.denied(fmt.Sprintf("%s: bad Docker-Content-Digest %q", what, h))
		}
		m.digest = d
	}
	if !get {
		return m, nil
	}
	m.payload, err = io.ReadAll(io.LimitReader(resp.Body, maxUpstreamDoc+1))
	if err != nil {
		return remoteManifest{}, u.fail("reading "+what, err)
	}
	if len(m.payload) > maxUpstreamDoc {
		return remoteManifest{}, u.denied(what + " is larger than 4 MiB")
	}
	// The payload decides: a digest reference must match it, and a
	// header that disagrees with it is not believed.
	alg := digest.SHA256
	if d, err := digest.Parse(ref); err == nil {
		alg = d.Algorithm()
		if alg.FromBytes(m.payload) != d {
			return remoteManifest{}, u.denied(what + ": the payload does not match the digest")
		}
	} else if m.digest != "" && m.digest.Validate() == nil && m.digest.Algorithm().Available() {
		alg = m.digest.Algorithm()
	}
	got := alg.FromBytes(m.payload)
	if m.digest != "" && m.digest != got {
		return remoteManifest{}, u.denied(fmt.Sprintf("%s: Docker-Content-Digest %s does not match the payload (%s)", what, m.digest, got))
	}
	m.digest = got
	return m, nil
}

// blob starts a GET of blob d of repo. The answer's body is the blob; the
// caller bounds reading it (idleReader). storage.ErrBlobUnknown when the
// upstream has no such blob.
func (u *upstream) blob(ctx context.Context, repo string, d digest.Digest) (*http.Response, error) {
	what := "blob " + repo + "@" + d.String()
	resp, err := u.do(ctx, http.MethodGet, repo+"/blobs/"+d.String(), nil, nil, pullScope(repo))
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return resp, nil
	case http.StatusNotFound:
		drain(resp)
		return nil, &storage.Error{Err: storage.ErrBlobUnknown, Digest: d, Detail: fmt.Sprintf("%s has no %s", u, what)}
	}
	drain(resp)
	return nil, u.statusError(what, resp)
}

// statBlob describes blob d of repo with a HEAD.
func (u *upstream) statBlob(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	what := "blob " + repo + "@" + d.String()
	resp, err := u.do(ctx, http.MethodHead, repo+"/blobs/"+d.String(), nil, nil, pullScope(repo))
	if err != nil {
		return 0, err
	}
	drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		if resp.ContentLength < 0 {
			return 0, u.denied(what + ": HEAD without Content-Length")
		}
		return resp.ContentLength, nil
	case http.StatusNotFound:
		return 0, &storage.Error{Err: storage.ErrBlobUnknown, Digest: d, Detail: fmt.Sprintf("%s has no %s", u, what)}
	}
	return 0, u.statusError(what, resp)
}

// index is the part of an image index the referrers API answers with.
type index struct {
	Manifests []struct {
		MediaType    string            `json:"mediaType"`
		Digest       digest.Digest     `json:"digest"`
		Size         int64             `json:"size"`
		ArtifactType string            `json:"artifactType"`
		Annotations  map[string]string `json:"annotations"`
	} `json:"manifests"`
}

// referrers asks the upstream's referrers API for the manifests whose
// subject is d, and, when it has none (404), the tag schema's index
// (sha256-<hex>), as a client of an older registry would.
func (u *upstream) referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]storage.Referrer, error) {
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	q := url.Values{}
	if artifactType != "" {
		q.Set("artifactType", artifactType)
	}
	what := "referrers of " + repo + "@" + d.String()
	resp, err := u.do(ctx, http.MethodGet, repo+"/referrers/"+d.String(), q, nil, pullScope(repo))
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	var body []byte
	filtered := resp.Header.Get("OCI-Filters-Applied") != ""
	switch resp.StatusCode {
	case http.StatusOK:
		if body, err = io.ReadAll(io.LimitReader(resp.Body, maxUpstreamDoc)); err != nil {
			return nil, u.fail("reading "+what, err)
		}
	case http.StatusNotFound:
		m, err := u.manifest(ctx, repo, string(d.Algorithm())+"-"+d.Encoded(), true)
		if err != nil {
			if isUnknown(err) {
				return nil, nil
			}
			return nil, err
		}
		body, filtered = m.payload, false
	default:
		return nil, u.statusError(what, resp)
	}
	var idx index
	if err := json.Unmarshal(body, &idx); err != nil {
		return nil, u.denied(what + ": unreadable index")
	}
	out := make([]storage.Referrer, 0, len(idx.Manifests))
	for _, m := range idx.Manifests {
		if artifactType != "" && !filtered && m.ArtifactType != artifactType {
			continue
		}
		if m.Digest.Validate() != nil {
			continue
		}
		out = append(out, storage.Referrer{
			Descriptor:   storage.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size},
			ArtifactType: m.ArtifactType,
			Annotations:  m.Annotations,
		})
	}
	return out, nil
}
