package registry

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestReferrersList(t *testing.T) {
	s := newServer(t, nil)
	subject, subjectPayload := s.pushImage("repo", "base", image{layers: 1})
	subj := &descriptorJSON{mtManifest, subject.String(), len(subjectPayload)}
	sbom, sbomPayload := s.pushImage("repo", "sbom", image{
		artifactType: "application/vnd.example.sbom",
		annotations:  map[string]string{"org.example": "yes"},
		subject:      subj,
	})
	sig, _ := s.pushImage("repo", "sig", image{artifactType: "application/vnd.example.sig", subject: subj})

	tests := []struct {
		name     string
		query    string
		want     []digest.Digest
		filtered bool
	}{
		{"all", "", []digest.Digest{sbom, sig}, false},
		{"filtered", "?artifactType=application/vnd.example.sbom", []digest.Digest{sbom}, true},
		{"filter matches nothing", "?artifactType=application/none", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := s.do("GET", "/v2/repo/referrers/"+subject.String()+tt.query, nil)
			res.expect(t, http.StatusOK, "")
			res.expectHeader(t, "Content-Type", mediaTypeIndex)
			if tt.filtered {
				res.expectHeader(t, "OCI-Filters-Applied", "artifactType")
			} else {
				res.expectHeader(t, "OCI-Filters-Applied", "")
			}
			var idx index
			if err := json.Unmarshal(res.body, &idx); err != nil {
				t.Fatal(err)
			}
			if idx.SchemaVersion != 2 || idx.MediaType != mediaTypeIndex || idx.Manifests == nil {
				t.Fatalf("not an image index: %s", res.body)
			}
			got := map[string]descriptor{}
			for _, m := range idx.Manifests {
				got[m.Digest] = m
			}
			if len(got) != len(tt.want) {
				t.Fatalf("referrers %s, want %v", res.body, tt.want)
			}
			for _, d := range tt.want {
				if _, ok := got[d.String()]; !ok {
					t.Fatalf("referrer %s missing from %s", d, res.body)
				}
			}
			if m, ok := got[sbom.String()]; ok {
				if m.MediaType != mtManifest || m.Size != int64(len(sbomPayload)) ||
					m.ArtifactType != "application/vnd.example.sbom" || m.Annotations["org.example"] != "yes" {
					t.Fatalf("sbom descriptor %+v", m)
				}
			}
		})
	}
}

func TestReferrersNeverAnswer404(t *testing.T) {
	s := newServer(t, nil)
	for _, path := range []string{
		"/v2/nosuchrepo/referrers/" + digest.FromString("x").String(),
		"/v2/nosuchrepo/referrers/" + digest.FromString("x").String() + "?artifactType=a/b",
	} {
		res := s.do("GET", path, nil)
		res.expect(t, http.StatusOK, "")
		if string(res.body) != `{"schemaVersion":2,"mediaType":"`+mediaTypeIndex+`","manifests":[]}` {
			t.Fatalf("body %s", res.body)
		}
	}
	s.do("GET", "/v2/repo/referrers/sha256:nothex", nil).expect(t, http.StatusBadRequest, CodeDigestInvalid)
}
