package drivertest

import (
	"testing"

	"github.com/berth-registry/berth/storage/driver"
)

func (s *suite) pathTests() map[string]func(*testing.T) {
	return map[string]func(*testing.T){
		"InvalidPathsRefused":   s.testInvalidPaths,
		"UnusualValidNamesWork": s.testUnusualValidNames,
	}
}

var invalidPaths = []string{
	"", "relative", "a/b", "/trailing/", "//", "/a//b", "/a/./b", "/.", "/..", "/a/..",
	"/a/../../etc/passwd", "/file.partial~", "/sp ace", "/tab\t", "/nul\x00", "/é", "/back\\slash",
	"/colon:", "/star*", "/q?", "/pct%2e",
}

func (s *suite) testInvalidPaths(t *testing.T) {
	d := s.driver(t)
	ctx := t.Context()
	put(t, d, "/valid", "x")
	for _, p := range invalidPaths {
		_, err := d.Stat(ctx, p)
		wantErr(t, d, err, driver.ErrInvalidPath, "Stat("+p+")")
		_, err = d.Reader(ctx, p, 0)
		wantErr(t, d, err, driver.ErrInvalidPath, "Reader("+p+")")
		_, err = d.Writer(ctx, p, false)
		wantErr(t, d, err, driver.ErrInvalidPath, "Writer("+p+")")
		_, err = d.List(ctx, p)
		wantErr(t, d, err, driver.ErrInvalidPath, "List("+p+")")
		wantErr(t, d, d.Delete(ctx, p), driver.ErrInvalidPath, "Delete("+p+")")
		wantErr(t, d, d.Move(ctx, "/valid", p), driver.ErrInvalidPath, "Move to "+p)
		wantErr(t, d, d.Move(ctx, p, "/valid"), driver.ErrInvalidPath, "Move from "+p)
		wantErr(t, d, driver.PutContent(ctx, d, p, []byte("x")), driver.ErrInvalidPath, "PutContent("+p+")")
	}
	if got := get(t, d, "/valid"); got != "x" {
		t.Fatalf("/valid changed to %q", got)
	}
	if got := list(t, d, "/"); len(got) != 1 {
		t.Fatalf("refused paths left files behind: %q", got)
	}
}

func (s *suite) testUnusualValidNames(t *testing.T) {
	d := s.driver(t)
	for _, p := range []string{"/.hidden", "/a/.../b", "/-dash_under.dot", "/UPPER/lower/09", "/x..y"} {
		put(t, d, p, p)
		if got := get(t, d, p); got != p {
			t.Errorf("%s holds %q", p, got)
		}
	}
}
