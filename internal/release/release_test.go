package release

import (
	"os"
	"regexp"
	"testing"
)

// TestMakefileBuildsWithTheSameTags keeps the Makefile and BuildTags from
// drifting apart: the tests and the benchmark would measure another
// binary than the one released.
func TestMakefileBuildsWithTheSameTags(t *testing.T) {
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^TAGS\s*:=\s*(.*)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no TAGS := line in the Makefile")
	}
	if got := string(m[1]); got != BuildTags {
		t.Fatalf("Makefile TAGS = %q, release.BuildTags = %q", got, BuildTags)
	}
}
