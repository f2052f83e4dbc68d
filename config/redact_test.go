package config

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestRedactedHidesEverySecret(t *testing.T) {
	secrets := []string{"HTTPSECRET", "REDISPW", "PROXYPW", "S3SECRET", "S3ACCESS", "PRIVKEY", "BEARER", "SMTPPW"}
	c := mustParse(t, `version: 0.1
log:
  hooks:
    - type: mail
      options: {smtp: {password: SMTPPW}}
storage:
  gcs:
    bucket: b
    credentials:
      type: service_account
      private_key: PRIVKEY
  delete: {enabled: true}
http:
  secret: HTTPSECRET
  headers: {X-Content-Type-Options: [nosniff]}
redis: {addrs: [r:6379], password: REDISPW}
proxy: {remoteurl: https://upstream.example.com, password: PROXYPW}
notifications:
  endpoints:
    - {name: a, url: https://a.example.com, headers: {Authorization: [Bearer BEARER], X-Source: [berth]}}
`, "REGISTRY_STORAGE=s3", "REGISTRY_STORAGE_S3_SECRETKEY=S3SECRET", "REGISTRY_STORAGE_S3_ACCESSKEY=S3ACCESS", "REGISTRY_STORAGE_S3_BUCKET=b")
	// Parse once more with gcs to cover its credentials too.
	gcs := mustParse(t, "version: 0.1\nstorage:\n  gcs:\n    credentials: {private_key: PRIVKEY}\n")
	for _, cfg := range []*Config{c, gcs} {
		out, err := cfg.Redacted().YAML()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(string(out), s) {
				t.Errorf("redacted YAML shows %s:\n%s", s, out)
			}
		}
	}
	out, _ := c.Redacted().YAML()
	for _, keep := range []string{"nosniff", "berth", "https://upstream.example.com", "bucket: b", "enabled: true"} {
		if !strings.Contains(string(out), keep) {
			t.Errorf("redacted YAML lost %q:\n%s", keep, out)
		}
	}
	if c.HTTP.Secret != "HTTPSECRET" || c.Notifications.Endpoints[0].Headers["Authorization"][0] != "Bearer BEARER" {
		t.Error("Redacted changed the original configuration")
	}
	if _, p := c.Storage.Driver(); p["secretkey"] != "S3SECRET" {
		t.Error("Redacted changed the original driver parameters")
	}
}

func TestYAMLRoundTrips(t *testing.T) {
	c := mustParse(t, fileWithFilesystem)
	out, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("printed.yml", out, nil)
	if err != nil {
		t.Fatalf("printed config does not parse:\n%v\n%s", err, out)
	}
	name, params := back.Storage.Driver()
	if name != "filesystem" || params["rootdirectory"] != "/data" || back.Storage.Delete.Enabled != true ||
		back.Storage.Maintenance.UploadPurging != c.Storage.Maintenance.UploadPurging {
		t.Errorf("round trip lost storage: %s %v %+v", name, params, back.Storage)
	}
	var generic map[string]any
	if err := yaml.Unmarshal(out, &generic); err != nil {
		t.Fatal(err)
	}
	if generic["version"] != "0.1" {
		t.Errorf("version printed as %#v, want the string 0.1", generic["version"])
	}
}
