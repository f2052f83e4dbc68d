package gcs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/berth-registry/berth/storage/driver"
)

// Walk lists everything below root in one flat, paginated listing and
// calls fn in tree order, with the directories the object names imply.
// GCS lists names in byte order, where "a-b" comes before "a/x" although
// the directory "a" sorts before the file "a-b"; so the listing is sorted
// again, with "/" before every other byte.
func (d *Driver) Walk(ctx context.Context, root string, fn driver.WalkFunc) error {
	files, err := d.listFiles(ctx, root)
	if err != nil {
		return err
	}
	if len(files) == 0 && root != "/" {
		return notFound("walk", root)
	}
	return driver.WalkFiles(ctx, root, files, fn)
}

// listFiles returns every file below root.
func (d *Driver) listFiles(ctx context.Context, root string) ([]driver.FileInfo, error) {
	q := &storage.Query{Prefix: d.dirKey(root)}
	if err := q.SetAttrSelection([]string{"Name", "Size", "Updated", "ContentType"}); err != nil {
		return nil, err
	}
	var files []driver.FileInfo
	it := d.bucket.Objects(ctx, q)
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("gcs: walk %s: %w", root, err)
		}
		if d.isSidecar(attrs.Name) || strings.HasSuffix(attrs.Name, "/") || attrs.ContentType == legacySessionContentType {
			continue
		}
		files = append(files, driver.FileInfo{Path: d.path(attrs.Name), Size: attrs.Size, ModTime: attrs.Updated})
	}
}

// Unfinished returns the paths below dir with an unfinished write, found
// from their sidecars, and when each write began.
func (d *Driver) Unfinished(ctx context.Context, dir string) (map[string]time.Time, error) {
	return d.unfinished(ctx, dir)
}

func (d *Driver) unfinished(ctx context.Context, dir string) (map[string]time.Time, error) {
	base := d.prefix + sidecarDir
	prefix := base + "/"
	if dir != "/" {
		prefix = d.sidecarKey(dir) + "/"
	}
	q := &storage.Query{Prefix: prefix}
	if err := q.SetAttrSelection([]string{"Name", "Metadata", "Created"}); err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	it := d.bucket.Objects(ctx, q)
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("gcs: list unfinished writes below %s: %w", dir, err)
		}
		started, err := time.Parse(time.RFC3339Nano, attrs.Metadata[metaStarted])
		if err != nil {
			started = attrs.Created
		}
		out[strings.TrimPrefix(attrs.Name, base)] = started
	}
}
