package gcs

import (
	"context"
	"fmt"
	"strings"
	"time"

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
	var files []driver.FileInfo
	err := d.listEach(ctx, listQuery{prefix: d.dirKey(root), fields: "name,size,updated,contentType"}, func(o object, _ string) error {
		if !d.isSidecar(o.Name) && !strings.HasSuffix(o.Name, "/") && o.ContentType != legacySessionContentType {
			files = append(files, driver.FileInfo{Path: d.path(o.Name), Size: int64(o.Size), ModTime: o.Updated})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gcs: walk %s: %w", root, err)
	}
	return files, nil
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
	out := map[string]time.Time{}
	err := d.listEach(ctx, listQuery{prefix: prefix, fields: "name,metadata,timeCreated"}, func(o object, _ string) error {
		started, err := time.Parse(time.RFC3339Nano, o.Metadata[metaStarted])
		if err != nil {
			started = o.Created
		}
		out[strings.TrimPrefix(o.Name, base)] = started
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gcs: list unfinished writes below %s: %w", dir, err)
	}
	return out, nil
}
