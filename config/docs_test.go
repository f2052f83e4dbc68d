package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDocsListEveryKeyWithItsStatus keeps the key table of
// docs/configuration.md equal to keyStatus: a key added to the schema is
// documented with its status in the same change.
func TestDocsListEveryKeyWithItsStatus(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- keys:begin -->\n", "<!-- keys:end -->"
	doc := string(b)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("docs/configuration.md has no %q … %q block", begin, end)
	}
	got := doc[i+len(begin) : j]
	if want := keyTable(); got != want {
		t.Errorf("the key table in docs/configuration.md differs from keyStatus; it should read:\n%s", want)
	}
}

// keyTable renders keyStatus as the docs' Markdown table, sorted by path.
func keyTable() string {
	paths := make([]string, 0, len(keyStatus))
	for p := range keyStatus {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	var b strings.Builder
	b.WriteString("| key | status |\n|---|---|\n")
	for _, p := range paths {
		b.WriteString("| `" + p + "` | " + keyStatus[p].String() + " |\n")
	}
	return b.String()
}
