package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
)

// TestOCIConformance runs the OCI distribution-spec conformance suite
// (version 1.1, every API and data area it has) against Berth on the file
// system and on each object store's test server, with blob GETs
// redirected to the store where the driver can sign URLs. Sparse
// manifests, an image whose layer was never pushed, are refused under the
// default validation, as Distribution refuses them, so that area runs
// once more against a server with validation.disabled.
func TestOCIConformance(t *testing.T) {
	suite := testenv.Tool(t, "conformance")
	type run struct {
		storage func(t *testing.T) string // the storage section, indented
		env     []string
		sparse  bool
	}
	onDisk := func(t *testing.T) string {
		return "  filesystem:\n    rootdirectory: " + filepath.Join(t.TempDir(), "data") + "\n"
	}
	runs := map[string]run{
		"filesystem": {storage: onDisk},
		"filesystem, validation disabled": {storage: onDisk, sparse: true,
			env: []string{"REGISTRY_VALIDATION_DISABLED=true"}},
	}
	for name, start := range objectStores {
		runs[name] = run{storage: start}
	}
	for name, tc := range runs {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := "version: 0.1\nstorage:\n" + tc.storage(t) + `  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
  secret: conformance
`
			addr := testenv.StartBerth(t, cfg, tc.env...)
			suiteCfg := filepath.Join(dir, "conformance.yaml")
			if err := os.WriteFile(suiteCfg, []byte(conformanceConfig(addr, filepath.Join(dir, "results"), tc.sparse)), 0o644); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			cmd := exec.Command(suite)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "OCI_CONFIGURATION="+suiteCfg)
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			report := out.String()
			if err != nil || !strings.Contains(report, "OCI Conformance Result: Pass") {
				t.Fatalf("conformance suite: %v\n%s", err, failures(report))
			}
			counts := notRun.FindAllStringSubmatch(report, -1)
			for _, m := range counts {
				if m[2] != "0" {
					t.Errorf("%s tests of the suite did not run:\n%s", m[1], report)
				}
			}
			if len(counts) != 2 {
				t.Errorf("no Disabled and Skip counts in the report:\n%s", report)
			}
		})
	}
}

// notRun matches the summary lines counting the suite's tests that were
// disabled or skipped; every one must run.
var notRun = regexp.MustCompile(`(?m)^\s*(Disabled|Skip)\.*:\s*(\d+)$`)

// failures keeps the lines of a conformance report that say what failed,
// and the summary.
func failures(report string) string {
	var b strings.Builder
	for _, line := range strings.Split(report, "\n") {
		if strings.Contains(line, "FAIL") || strings.Contains(line, "failed test") || strings.HasPrefix(strings.TrimSpace(line), "- ") {
			b.WriteString(line + "\n")
		}
	}
	if i := strings.Index(report, "OCI Conformance Result"); i >= 0 {
		b.WriteString(report[i:])
	}
	return b.String()
}

// conformanceConfig turns on every area of the suite, sparse manifests
// only when asked.
func conformanceConfig(addr, results string, sparse bool) string {
	return fmt.Sprintf(`registry: %s
tls: disabled
repo1: conformance/one
repo2: conformance/two
logging: warn
apis:
  ping: true
  pull: true
  push: true
  blobs:
    atomic: true
    delete: true
    mountAnonymous: true
    uploadCancel: true
  manifests:
    atomic: true
    delete: true
    tagParam: true
  tags:
    atomic: true
    delete: true
    list: true
  referrer: true
data:
  image: true
  index: true
  indexList: true
  sparse: %t
  artifact: true
  subject: true
  subjectMissing: true
  artifactList: true
  dataField: true
  nondistributable: true
  customFields: true
  noLayers: true
  emptyBlob: true
  sha512: true
resultsDir: %s
version: "1.1"
`, addr, sparse, results)
}
