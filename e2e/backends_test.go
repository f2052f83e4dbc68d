package e2e

import (
	"fmt"
	"testing"

	"github.com/berth-registry/berth/internal/testenv"
)

// backend starts a storage server for one test and returns the storage
// section of a Berth config pointed at it (indented for "storage:").
type backend func(t *testing.T) string

var objectStores = map[string]backend{
	"s3": func(t *testing.T) string {
		m := testenv.StartMinIO(t)
		return s3Storage(m, m.Bucket(t))
	},
	"gcs": func(t *testing.T) string {
		g := testenv.StartGCS(t)
		return fmt.Sprintf(`  gcs:
    bucket: %s
    endpoint: %s
    rootdirectory: /registry
`, g.Bucket, g.Endpoint)
	},
	"azure": func(t *testing.T) string {
		a := testenv.StartAzurite(t)
		return fmt.Sprintf(`  azure:
    accountname: %s
    accountkey: %s
    container: %s
    serviceurl: %s
`, a.Account, a.Key, a.Container(t), a.ServiceURL)
	},
	"swift": func(t *testing.T) string {
		sw := testenv.StartSwift(t)
		return fmt.Sprintf(`  swift:
    authurl: %s
    username: %s
    password: %s
    container: registry
`, sw.AuthURL, sw.User, sw.Key)
	},
}

// TestDockerOnEveryObjectStore pushes, pulls and runs an image through
// `berth serve` on each object-store driver, against its real test server.
func TestDockerOnEveryObjectStore(t *testing.T) {
	docker := testenv.Docker(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("DOCKER_BUILDKIT", "0")
	buildCtx := buildImageContext(t)
	for name, start := range objectStores {
		t.Run(name, func(t *testing.T) {
			cfg := "version: 0.1\nstorage:\n" + start(t) + `  delete:
    enabled: true
  redirect:
    disable: true
http:
  addr: 127.0.0.1:5000
  secret: e2e
`
			addr := testenv.StartBerth(t, cfg)
			image := addr + "/" + name + "/app:1.0"
			dockerRoundTrip(t, docker, buildCtx, image, image)
		})
	}
}
