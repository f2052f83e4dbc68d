package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// miniRegistry is FLOOR_SERVER=registry: the least a registry must do for
// docker to push an image and pull it back, to size row 10b (registry CPU
// during a docker push and pull) the way the net/http floor sizes row 6.
// Each blob's bytes are hashed as they arrive, written to one file,
// synced (an acknowledged blob survives a crash, which Distribution also
// does for every file it writes) and renamed to its digest; manifests are
// kept in memory. No repositories, upload sessions another process could
// resume, links, directory syncs, logs or validation beyond the digest:
// what Berth does beyond this is what its CPU pays for.
//
// With layout set (FLOOR_SERVER=durable) it keeps each blob where
// Distribution's layout does, blobs/sha256/<ab>/<hex>/data, and a link
// to it in repositories/<name>/_layers/sha256/<hex>/link, a manifest as a
// blob with its revision and tag links, and syncs what those need to
// survive a crash before the 201: each file, the directory each landed
// in, and the parent of each directory made for them (manifests are
// still served from memory). That is the least a registry keeping the layout durably
// does; what Berth does beyond it is its sessions, claims and logs.
type miniRegistry struct {
	dir    string
	layout bool

	mu        sync.Mutex
	uploads   map[string]*miniUpload
	manifests map[string]miniManifest // by "name:reference", tag and digest
}

type miniUpload struct {
	f    *os.File
	sha  hash.Hash
	size int64
}

type miniManifest struct {
	body        []byte
	contentType string
	digest      string
}

func newMiniRegistry(dir string) *miniRegistry {
	return &miniRegistry{dir: dir, uploads: map[string]*miniUpload{}, manifests: map[string]miniManifest{}}
}

func (m *miniRegistry) serve(w http.ResponseWriter, r *http.Request) {
	w.Header()["Docker-Distribution-Api-Version"] = version
	p := r.URL.Path
	if p == "/v2/" || p == "/v2" {
		w.Write([]byte("{}"))
		return
	}
	name, kind, ref, ok := splitPath(p)
	if !ok {
		http.NotFound(w, r)
		return
	}
	var err error
	switch {
	case kind == "blobs/uploads" && r.Method == http.MethodPost:
		m.start(w, name)
	case kind == "blobs/uploads" && r.Method == http.MethodPatch:
		err = m.patch(w, r, name, ref)
	case kind == "blobs/uploads" && r.Method == http.MethodPut:
		err = m.commit(w, r, name, ref)
	case kind == "blobs" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		m.blob(w, r, ref)
	case kind == "manifests" && r.Method == http.MethodPut:
		err = m.putManifest(w, r, name, ref)
	case kind == "manifests" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		m.manifest(w, r, name, ref)
	default:
		http.Error(w, "unsupported", http.StatusMethodNotAllowed)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
}

// splitPath cuts /v2/NAME/KIND/REF, KIND being blobs, blobs/uploads or
// manifests.
func splitPath(p string) (name, kind, ref string, ok bool) {
	p = strings.TrimPrefix(p, "/v2/")
	for _, k := range []string{"/blobs/uploads/", "/blobs/", "/manifests/"} {
		if i := strings.LastIndex(p, k); i > 0 {
			return p[:i], strings.Trim(k, "/"), p[i+len(k):], true
		}
	}
	return "", "", "", false
}

func (m *miniRegistry) start(w http.ResponseWriter, name string) {
	id := rand.Text()
	f, err := os.CreateTemp(m.dir, "upload-")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	m.mu.Lock()
	m.uploads[id] = &miniUpload{f: f, sha: sha256.New()}
	m.mu.Unlock()
	w.Header().Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
	w.Header().Set("Range", "0-0")
	w.WriteHeader(http.StatusAccepted)
}

func (m *miniRegistry) upload(id string) (*miniUpload, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.uploads[id]
	if !ok {
		return nil, fmt.Errorf("no upload %q", id)
	}
	return u, nil
}

// write appends a request's body to the upload and its hash.
func (u *miniUpload) write(body io.Reader) error {
	n, err := io.Copy(io.MultiWriter(u.f, u.sha), body)
	u.size += n
	return err
}

func (m *miniRegistry) patch(w http.ResponseWriter, r *http.Request, name, id string) error {
	u, err := m.upload(id)
	if err != nil {
		return err
	}
	if err := u.write(r.Body); err != nil {
		return err
	}
	w.Header().Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
	w.Header().Set("Range", "0-"+strconv.FormatInt(u.size-1, 10))
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (m *miniRegistry) commit(w http.ResponseWriter, r *http.Request, name, id string) error {
	u, err := m.upload(id)
	if err != nil {
		return err
	}
	if err := u.write(r.Body); err != nil {
		return err
	}
	digest := r.URL.Query().Get("digest")
	if got := "sha256:" + hex.EncodeToString(u.sha.Sum(nil)); got != digest {
		return fmt.Errorf("digest %s, the bytes are %s", digest, got)
	}
	if err := u.f.Sync(); err != nil {
		return err
	}
	if err := u.f.Close(); err != nil {
		return err
	}
	if m.layout {
		err = m.place(u.f.Name(), name, strings.TrimPrefix(digest, "sha256:"))
	} else {
		err = os.Rename(u.f.Name(), m.blobName(digest))
	}
	if err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.uploads, id)
	m.mu.Unlock()
	w.Header().Set("Location", "/v2/"+name+"/blobs/"+digest)
	w.Header().Set("Docker-Content-Digest", digest)
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (m *miniRegistry) blobName(digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	if m.layout && len(hex) > 2 {
		return filepath.Join(m.dir, "blobs", "sha256", hex[:2], hex, "data")
	}
	return filepath.Join(m.dir, "blob-"+hex)
}

// place moves the synced upload file to the blob's place in the layout
// and links it into the repository name, syncing every new entry.
func (m *miniRegistry) place(file, name, hex string) error {
	if strings.Contains(name, "..") {
		return fmt.Errorf("repository name %q", name)
	}
	if err := m.placeBlob(file, hex); err != nil {
		return err
	}
	return m.link(name, "_layers/sha256/"+hex, hex)
}

func (m *miniRegistry) placeBlob(file, hex string) error {
	blob := m.blobName("sha256:" + hex)
	made, err := mkdirs(filepath.Dir(blob))
	if err != nil {
		return err
	}
	if err := os.Rename(file, blob); err != nil {
		return err
	}
	return syncDirs(filepath.Dir(blob), made)
}

// link writes "sha256:<hex>" to repositories/<name>/<rel>/link, synced,
// with its directory and the parents of those it made.
func (m *miniRegistry) link(name, rel, hex string) error {
	link := filepath.Join(m.dir, "repositories", name, filepath.FromSlash(rel), "link")
	made, err := mkdirs(filepath.Dir(link))
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(link), "link-")
	if err != nil {
		return err
	}
	err = writeSynced(f, []byte("sha256:"+hex))
	if err == nil {
		err = os.Rename(f.Name(), link)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	return syncDirs(filepath.Dir(link), made)
}

// storeManifest keeps a manifest as Distribution's layout does: its
// bytes as a blob, a revision link, and for a tag its current and index
// links, each synced as a layer's are.
func (m *miniRegistry) storeManifest(name, ref, hex string, body []byte) error {
	if strings.Contains(name, "..") || strings.Contains(ref, "/") {
		return fmt.Errorf("repository name %q, reference %q", name, ref)
	}
	f, err := os.CreateTemp(m.dir, "manifest-")
	if err != nil {
		return err
	}
	err = writeSynced(f, body)
	if err == nil {
		err = m.placeBlob(f.Name(), hex)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := m.link(name, "_manifests/revisions/sha256/"+hex, hex); err != nil {
		return err
	}
	if strings.HasPrefix(ref, "sha256:") {
		return nil
	}
	if err := m.link(name, "_manifests/tags/"+ref+"/index/sha256/"+hex, hex); err != nil {
		return err
	}
	return m.link(name, "_manifests/tags/"+ref+"/current", hex)
}

// writeSynced writes b to f, syncs it and closes it.
func writeSynced(f *os.File, b []byte) error {
	_, err := f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// mkdirs makes dir and its missing parents, and returns those it made,
// outermost first.
func mkdirs(dir string) ([]string, error) {
	err := os.Mkdir(dir, 0o755)
	switch {
	case err == nil:
		return []string{dir}, nil
	case errors.Is(err, fs.ErrExist):
		return nil, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	made, err := mkdirs(filepath.Dir(dir))
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return made, nil
		}
		return nil, err
	}
	return append(made, dir), nil
}

// syncDirs syncs dir, where an entry landed, and the parent of each
// directory in made (dir's own included), each once.
func syncDirs(dir string, made []string) error {
	dirs := []string{dir}
	for _, d := range made {
		if p := filepath.Dir(d); !slices.Contains(dirs, p) {
			dirs = append(dirs, p)
		}
	}
	for _, d := range dirs {
		f, err := os.Open(d)
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (m *miniRegistry) blob(w http.ResponseWriter, r *http.Request, digest string) {
	if strings.ContainsAny(digest, "/.") {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(m.blobName(digest))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", time.Time{}, f)
}

func (m *miniRegistry) putManifest(w http.ResponseWriter, r *http.Request, name, ref string) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	mf := miniManifest{body: body, contentType: r.Header.Get("Content-Type"), digest: "sha256:" + hex.EncodeToString(sum[:])}
	if m.layout {
		if err := m.storeManifest(name, ref, hex.EncodeToString(sum[:]), body); err != nil {
			return err
		}
	}
	m.mu.Lock()
	m.manifests[name+":"+ref] = mf
	m.manifests[name+":"+mf.digest] = mf
	m.mu.Unlock()
	w.Header().Set("Location", "/v2/"+name+"/manifests/"+mf.digest)
	w.Header().Set("Docker-Content-Digest", mf.digest)
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (m *miniRegistry) manifest(w http.ResponseWriter, r *http.Request, name, ref string) {
	m.mu.Lock()
	mf, ok := m.manifests[name+":"+ref]
	m.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", mf.contentType)
	h.Set("Docker-Content-Digest", mf.digest)
	h.Set("Content-Length", strconv.Itoa(len(mf.body)))
	if r.Method == http.MethodGet {
		w.Write(mf.body)
	}
}
