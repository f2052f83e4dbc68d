package storage

import (
	"context"
	"slices"
	"testing"

	"github.com/berth-registry/berth/storage/driver"
)

func TestTagsPagination(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		repo := newRegistry(open, Options{}).Repository("app")
		img := newImage(t, "tags")
		for _, tag := range []string{"v2", "latest", "v10", "V1", "1.0", "_x"} {
			img.push(t, repo, tag)
		}
		all := []string{"1.0", "V1", "_x", "latest", "v10", "v2"}
		tests := []struct {
			n    int
			last string
			want []string
		}{
			{0, "", all},
			{-1, "", all},
			{2, "", all[:2]},
			{2, "V1", []string{"_x", "latest"}},
			{0, "latest", []string{"v10", "v2"}},
			{10, "v2", []string{}},
			{3, "m", []string{"v10", "v2"}}, // last need not be a tag
			{1, "", []string{"1.0"}},
		}
		for _, tt := range tests {
			got, _, err := repo.Tags(ctx, tt.n, tt.last)
			if err != nil {
				t.Fatalf("Tags(%d, %q): %v", tt.n, tt.last, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Tags(%d, %q) = %q, want %q", tt.n, tt.last, got, tt.want)
			}
		}
	})
}

func TestTagsOfUnknownRepository(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		reg := newRegistry(open, Options{})
		_, _, err := reg.Repository("nothing").Tags(ctx, 0, "")
		wantErr(t, err, ErrNameUnknown)
		// A repository with content but no tags exists: an empty list.
		pushBlob(t, reg.Repository("blobsonly"), []byte("x"))
		tags, _, err := reg.Repository("blobsonly").Tags(ctx, 0, "")
		if err != nil || tags == nil || len(tags) != 0 {
			t.Fatalf("Tags = %q, %v", tags, err)
		}
		// A parent of a repository is not one.
		newImage(t, "p").push(t, reg.Repository("team/app"), "v1")
		_, _, err = reg.Repository("team").Tags(ctx, 0, "")
		wantErr(t, err, ErrNameUnknown)
	})
}

func TestCatalog(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() driver.Driver) {
		ctx := context.Background()
		reg := newRegistry(open, Options{})
		if got, err := reg.Catalog(ctx, 0, ""); err != nil || len(got) != 0 {
			t.Fatalf("empty Catalog = %q, %v", got, err)
		}
		img := newImage(t, "cat")
		for _, name := range []string{"b", "a", "team/app", "team/app/sub", "team-x", "z/y/x"} {
			img.push(t, reg.Repository(name), "v1")
		}
		pushBlob(t, reg.Repository("layersonly"), []byte("x"))
		u, err := reg.Repository("uploading").NewUpload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Write([]byte("some")); err != nil {
			t.Fatal(err)
		}
		if err := u.Close(ctx); err != nil {
			t.Fatal(err)
		}
		all := []string{"a", "b", "layersonly", "team-x", "team/app", "team/app/sub", "uploading", "z/y/x"}
		tests := []struct {
			n    int
			last string
			want []string
		}{
			{0, "", all},
			{3, "", all[:3]},
			{3, "b", []string{"layersonly", "team-x", "team/app"}},
			{0, "team/app", []string{"team/app/sub", "uploading", "z/y/x"}},
			{5, "z/y/x", []string{}},
		}
		for _, tt := range tests {
			got, err := reg.Catalog(ctx, tt.n, tt.last)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Catalog(%d, %q) = %q, want %q", tt.n, tt.last, got, tt.want)
			}
		}
	})
}
