package storage

import "github.com/opencontainers/go-digest"

// CheckManifest answers the manifest PutManifest would store for ref without
// storing anything, or the error PutManifest would return
// before its first write (a bad tag or digest, a payload that does not
// match its digest, a manifest that does not parse). A mirror uses it to
// answer a client with what it fetched while the store runs behind.
func CheckManifest(ref, mediaType string, payload []byte) (Manifest, error) {
	m, _, err := checkManifest(ref, mediaType, payload)
	return m, err
}

// checkManifest is what PutManifest checks before its first write: the
// manifest it would store, and its parsed document.
func checkManifest(ref, mediaType string, payload []byte) (Manifest, *manifestDoc, error) {
	var d digest.Digest
	if isDigestRef(ref) {
		want := digest.Digest(ref)
		if err := validDigest(want); err != nil {
			return Manifest{}, nil, err
		}
		d = want.Algorithm().FromBytes(payload)
		if d != want {
			return Manifest{}, nil, &Error{Err: ErrDigestInvalid, Digest: want, Detail: "manifest has digest " + string(d)}
		}
	} else {
		if !ValidTag(ref) {
			return Manifest{}, nil, invalidManifest("invalid tag %q", ref)
		}
		d = digest.SHA256.FromBytes(payload)
	}
	doc, mt, err := parseManifest(mediaType, payload)
	if err != nil {
		return Manifest{}, nil, err
	}
	m := Manifest{Descriptor: Descriptor{MediaType: mt, Digest: d, Size: int64(len(payload))}, Payload: payload}
	if doc.Subject != nil {
		m.Subject = doc.Subject.Digest
	}
	return m, doc, nil
}
