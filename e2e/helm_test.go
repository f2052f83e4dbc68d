package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
)

// TestHelmPushAndPullAnOCIChart packages a chart, pushes it to Berth as an
// OCI artifact and pulls it back byte for byte.
func TestHelmPushAndPullAnOCIChart(t *testing.T) {
	helm := testenv.Tool(t, "helm")
	addr := testenv.StartBerth(t, filesystemConfig(t.TempDir()))
	home := t.TempDir()
	for _, k := range []string{"HOME", "HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"} {
		t.Setenv(k, filepath.Join(home, k))
	}
	dir := t.TempDir()
	testenv.RunIn(t, dir, helm, "create", "berthdemo")
	testenv.RunIn(t, dir, helm, "package", "berthdemo")
	pkg := filepath.Join(dir, "berthdemo-0.1.0.tgz")
	want, err := os.ReadFile(pkg)
	if err != nil {
		t.Fatal(err)
	}
	testenv.RunIn(t, dir, helm, "push", "--plain-http", pkg, "oci://"+addr+"/charts")
	back := t.TempDir()
	testenv.RunIn(t, back, helm, "pull", "--plain-http", "oci://"+addr+"/charts/berthdemo", "--version", "0.1.0")
	got, err := os.ReadFile(filepath.Join(back, "berthdemo-0.1.0.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("pulled chart differs from the pushed one (%d bytes, want %d)", len(got), len(want))
	}
}
