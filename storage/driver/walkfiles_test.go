package driver

import (
	"context"
	"slices"
	"testing"
)

func TestWalkFilesOrderDirectoriesAndSkip(t *testing.T) {
	files := []string{"/r/a-b/x", "/r/a/y", "/r/a/b/c/z", "/r/a.b", "/r/z", "/r/a/b/w"}
	tests := []struct {
		name string
		skip string
		want []string
	}{
		{name: "all", want: []string{"/r/a/", "/r/a/b/", "/r/a/b/c/", "/r/a/b/c/z", "/r/a/b/w", "/r/a/y", "/r/a-b/", "/r/a-b/x", "/r/a.b", "/r/z"}},
		{name: "skip a/b", skip: "/r/a/b", want: []string{"/r/a/", "/r/a/b/", "/r/a/y", "/r/a-b/", "/r/a-b/x", "/r/a.b", "/r/z"}},
		{name: "skip a", skip: "/r/a", want: []string{"/r/a/", "/r/a-b/", "/r/a-b/x", "/r/a.b", "/r/z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := make([]FileInfo, len(files))
			for i, p := range files {
				in[i] = FileInfo{Path: p}
			}
			var got []string
			err := WalkFiles(context.Background(), "/r", in, func(fi FileInfo) error {
				p := fi.Path
				if fi.IsDir {
					p += "/"
				}
				got = append(got, p)
				if fi.Path == tt.skip {
					return ErrSkipDir
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("walk\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestComparePathsIsTreeOrder(t *testing.T) {
	tests := []struct{ a, b string }{
		{"/a", "/a-b"},
		{"/a/x", "/a-b"},
		{"/a/x", "/a.b"},
		{"/a", "/a/x"},
		{"/a-b", "/a.b"},
		{"/a/z", "/ab"},
		{"/a/z", "/b"},
	}
	for _, tt := range tests {
		if comparePaths(tt.a, tt.b) >= 0 || comparePaths(tt.b, tt.a) <= 0 {
			t.Errorf("%s should sort before %s", tt.a, tt.b)
		}
	}
	if comparePaths("/a/b", "/a/b") != 0 {
		t.Error("a path should compare equal to itself")
	}
}
