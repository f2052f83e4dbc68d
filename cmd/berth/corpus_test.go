package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/internal/testenv"
	"gopkg.in/yaml.v3"
)

// corpusDir holds real configuration files from public projects, each
// with its source (and the environment its deployment adds) in its
// header comment.
var corpusDir = filepath.Join("..", "..", "config", "testdata", "corpus")

// corpusFile is what a corpus file must do. refused is a part of the
// error when Berth refuses it (only where Distribution refuses too);
// warnings are Berth's start-up warnings, all of them.
type corpusFile struct {
	refused  string
	warnings []string
	// distribution is whether CNCF Distribution 3.1.2 starts with it (the
	// storage driver switched to a temporary filesystem, as object stores
	// are not reachable here).
	distribution bool
}

func noEffect(keys ...string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = config.NoEffectWarning + k
	}
	return out
}

func unknownKey(keys ...string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = config.UnknownKeyWarning + k
	}
	return out
}

func warnings(lists ...[]string) []string { return slices.Concat(lists...) }

var corpus = map[string]corpusFile{
	"astronomer-registry-configmap.yml": {distribution: true},
	"deckhouse-system-registry-proxy.yml": {warnings: warnings(
		unknownKey("auth.token.proxy", "http.realip", "proxy.ca", "proxy.localpathalias", "proxy.remotepathonly")), distribution: true},
	"distribution-conf-e2e-cloud-storage.yml": {warnings: warnings(
		[]string{"storage.s3.secure is set twice"}, unknownKey("cache")), distribution: true},
	"distribution-conf-local-cloud.yml": {warnings: warnings(
		[]string{"storage.s3.secure is set twice"}, unknownKey("cache")), distribution: true},
	"distribution-conf-local-s3.yml": {distribution: true},
	// Distribution 3 has no proxy middleware either (it panics at start).
	"distribution-config-cache-official.yml": {refused: `unknown registry middleware "proxy"`},
	"distribution-config-cache.yml":          {warnings: unknownKey("proxy.cacheTTL"), distribution: true},
	"distribution-config-dev.yml":            {distribution: true},
	// Distribution 3.1.2 refuses its own sample: ciphersuites as one
	// comma-separated string is not a list to its YAML reader. Berth reads
	// such a string as a list, as it does for every list.
	"distribution-config-example-ciphers.yml":         {},
	"distribution-config-example-with-extensions.yml": {warnings: unknownKey("extensions"), distribution: true},
	"distribution-config-example.yml":                 {distribution: true},
	"distribution-config-v2-hooks.yml":                {warnings: noEffect("log.hooks"), distribution: true},
	"distribution-docs-recipes-osx.yml":               {distribution: true},
	"distribution-library-image-config-example.yml":   {distribution: true},
	"distribution-tokenserver-oauth-notls.yml":        {warnings: warnings(loglevel, noEffect("compatibility")), distribution: true},
	"distribution-tokenserver-registry-config.yml":    {warnings: warnings(loglevel, noEffect("compatibility")), distribution: true},
	"harbor-helm-registry-azure.yml":                  {distribution: true},
	"harbor-helm-registry-filesystem.yml":             {distribution: true},
	"harbor-helm-registry-gcs.yml":                    {distribution: true},
	// Distribution 3 dropped the oss driver too.
	"harbor-helm-registry-oss.yml":               {refused: "storage.oss: unknown storage driver"},
	"harbor-helm-registry-s3.yml":                {distribution: true},
	"harbor-helm-registry-swift.yml":             {distribution: true},
	"harbor-registry-config-tls-s3-sentinel.yml": {warnings: noEffect("compatibility"), distribution: true},
	"harbor-registry-config.yml":                 {warnings: noEffect("compatibility"), distribution: true},
	"kloudlite-registry-configmap.yml":           {distribution: true},
	"kyma-docker-registry.yml":                   {distribution: true},
	"twuni-chart-default.yml":                    {distribution: true},
	"twuni-chart-s3-proxy-metrics.yml":           {distribution: true},
}

var (
	loglevel = []string{"loglevel is deprecated"}
)

// TestConfigCorpus runs every corpus file through what serve does before
// it listens (config.Load with the deployment's environment, then
// prepare), and through CNCF Distribution: Berth starts with what
// Distribution starts with, and refuses only what it refuses too.
func TestConfigCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(corpusDir, "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Fatalf("%d corpus files, want at least 25", len(files))
	}
	sources := map[string]bool{}
	fixtures := newCorpusFixtures(t)
	// CNCF Distribution's verdict on each file is checked too when it is
	// installed (always under CI).
	distribution := optionalTool(t, "registry")
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			src, env := corpusHeader(t, file)
			sources[src] = true
			want, ok := corpus[name]
			if !ok {
				t.Logf("no expectation for %s", name)
			}
			env = append(env, fixtures.env(t, file, env)...)
			err := berthStarts(file, env)
			got := corpusFile{}
			if err != nil {
				got.refused = err.Error()
			} else {
				cfg, _ := config.Load(file, env)
				got.warnings = cfg.Warnings
			}
			if !ok {
				t.Fatalf("no expectation for %s in the corpus table; Berth gives refused=%q warnings=%q", name, got.refused, got.warnings)
			}
			switch {
			case want.refused == "" && got.refused != "":
				t.Errorf("refused:\n%s", got.refused)
			case want.refused != "" && !strings.Contains(got.refused, want.refused):
				t.Errorf("refused with %q, want an error containing %q", got.refused, want.refused)
			case want.refused != "" && want.distribution:
				t.Errorf("the table says Distribution starts with a file Berth refuses: Berth may refuse only what Distribution refuses")
			}
			if !sameWarnings(got.warnings, want.warnings) {
				t.Errorf("warnings:\n  %s\nwant (prefixes):\n  %s", strings.Join(got.warnings, "\n  "), strings.Join(want.warnings, "\n  "))
			}
			if distribution != "" {
				if starts := distributionStarts(t, distribution, file, env); starts != want.distribution {
					t.Errorf("CNCF Distribution starts: %v, the table says %v", starts, want.distribution)
				}
			}
		})
	}
	if len(sources) < 6 {
		t.Errorf("corpus files from %d sources, want at least 6", len(sources))
	}
}

// sameWarnings reports whether each of want is the start of one of got,
// one to one.
func sameWarnings(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	left := slices.Clone(got)
	for _, w := range want {
		i := slices.IndexFunc(left, func(g string) bool { return strings.HasPrefix(g, w) })
		if i < 0 {
			return false
		}
		left = slices.Delete(left, i, i+1)
	}
	return true
}

// berthDrivers are the storage drivers both Berth and Distribution have:
// Distribution runs with them switched to a temporary filesystem, as no
// object store is reachable here. Others (oss) are left as written.
var berthDrivers = []string{"azure", "filesystem", "gcs", "inmemory", "s3", "swift"}

// distributionStarts runs CNCF Distribution with the file as its
// deployment would (its environment, the fixtures' files), on free
// loopback ports, and reports whether it serves /v2/ before it exits.
func distributionStarts(t *testing.T, registry, file string, env []string) bool {
	t.Helper()
	ports := testenv.FreePorts(t, 2)
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	run := append(slices.Clone(env), "REGISTRY_HTTP_ADDR="+addr, "REGISTRY_HTTP_DEBUG_ADDR=127.0.0.1:"+strconv.Itoa(ports[1]),
		"OTEL_TRACES_EXPORTER=none")
	if driver := fileDriver(file, env); driver == "" || slices.Contains(berthDrivers, driver) {
		// The driver's own variables would make a second driver.
		run = slices.DeleteFunc(run, func(kv string) bool {
			return slices.ContainsFunc(berthDrivers, func(d string) bool {
				return strings.HasPrefix(kv, "REGISTRY_STORAGE_"+strings.ToUpper(d)+"_")
			})
		})
		run = append(run, "REGISTRY_STORAGE=filesystem", "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="+t.TempDir())
	}
	abs, err := filepath.Abs(file) // the process runs in a directory of its own
	if err != nil {
		t.Fatal(err)
	}
	p := testenv.StartProcess(t, registry, []string{"serve", abs}, run)
	scheme := "http://"
	if strings.Contains(fileText(t, file), "certificate:") {
		scheme = "https://"
	}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.Done():
			t.Logf("CNCF Distribution exited:\n%s", tail(p.Log(), 600))
			return false
		default:
		}
		if resp, err := client.Get(scheme + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("CNCF Distribution neither served nor exited in 20s:\n%s", tail(p.Log(), 2000))
	return false
}

// fileDriver is the storage driver the file (and env) select, or "".
func fileDriver(file string, env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "REGISTRY_STORAGE="); ok {
			return v
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	var doc struct {
		Storage map[string]any `yaml:"storage"`
	}
	if yaml.Unmarshal(b, &doc) != nil {
		return ""
	}
	for k := range doc.Storage {
		if !slices.Contains([]string{"cache", "delete", "maintenance", "redirect", "tag", "gc"}, k) {
			return k
		}
	}
	return ""
}

func fileText(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// berthStarts is serve up to listening: load, then prepare.
func berthStarts(file string, env []string) error {
	cfg, err := config.Load(file, env)
	if err != nil {
		return err
	}
	_, err = prepare(cfg, slog.New(slog.DiscardHandler))
	return err
}

// corpusHeader reads a corpus file's source (its repository) and the
// "# env: K=V" lines of its header.
func corpusHeader(t *testing.T, file string) (source string, env []string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "#") {
			break
		}
		if u, ok := strings.CutPrefix(line, "# Source: https://github.com/"); ok {
			parts := strings.SplitN(u, "/", 3)
			if len(parts) >= 2 {
				source = parts[0] + "/" + parts[1]
			}
		}
		if kv, ok := strings.CutPrefix(line, "# env: "); ok {
			env = append(env, kv)
		}
	}
	if source == "" {
		t.Fatalf("%s: no '# Source: https://github.com/…' header", file)
	}
	return source, env
}

// corpusFixtures stands in for the files a deployment mounts (TLS
// certificate and key, htpasswd, token root bundle): overrides point the
// configuration at real ones, as if mounted where the file says.
type corpusFixtures struct {
	cert, key, bundle, htpasswd string
	// upstream stands in for a proxy's remote registry: Distribution asks
	// it for its auth challenge at start, and there is no network here.
	upstream string
}

func newCorpusFixtures(t *testing.T) *corpusFixtures {
	dir := t.TempDir()
	ca := newTestCA(t, "corpus ca")
	tc := tlsFiles(t, ca, dir, 7)
	f := &corpusFixtures{cert: tc.Certificate, key: tc.Key, bundle: filepath.Join(dir, "bundle.pem"), htpasswd: filepath.Join(dir, "htpasswd")}
	write(t, f.bundle, ca.pem)
	write(t, f.htpasswd, []byte("admin:$2y$04$Dvy1FOnhBQnhWOTuFGEWsOAdOl6ZeMlqwLVbxOVrPNi6wbUmaAcHy\n"))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	}))
	t.Cleanup(up.Close)
	f.upstream = up.URL
	return f
}

// env returns the overrides for the files the configuration names.
func (f *corpusFixtures) env(t *testing.T, file string, env []string) []string {
	cfg, err := config.Load(file, env)
	if err != nil {
		var ce *config.Error
		if !errors.As(err, &ce) {
			t.Fatal(err)
		}
		return nil
	}
	var out []string
	if cfg.HTTP.TLS.Certificate != "" {
		out = append(out, "REGISTRY_HTTP_TLS_CERTIFICATE="+f.cert, "REGISTRY_HTTP_TLS_KEY="+f.key)
	}
	if cfg.Auth.Htpasswd != nil {
		out = append(out, "REGISTRY_AUTH_HTPASSWD_PATH="+f.htpasswd)
	}
	if cfg.Proxy.RemoteURL != "" {
		out = append(out, "REGISTRY_PROXY_REMOTEURL="+f.upstream)
	}
	if cfg.Auth.Token != nil && cfg.Auth.Token.RootCertBundle != "" {
		out = append(out, "REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE="+f.bundle)
	}
	return out
}

// optionalTool is the path of a pinned tool, or "" when it is missing
// (a failure under CI): the corpus's Berth half runs without it.
func optionalTool(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(testenv.RepoRoot(t), ".cache", "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if testenv.InCI() {
		t.Fatalf("%s is required under CI=true: make tools", name)
	}
	t.Logf("%s not installed (make tools): Distribution's verdicts are not checked", name)
	return ""
}
