package config

import (
	"encoding/json"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Each secret below is a distinct word that must not appear in the output.
const secretsFile = `version: 0.1
log:
  fields: {apitoken: FIELDTOKEN, service: registry, backend: "BlobEndpoint=https://a.example.com;AccountKey=FIELDACCOUNTKEY;SharedAccessSignature=sv=1&sig=FIELDSIG"}
  hooks:
    - type: mail
      options: {smtp: {addr: "smtp://mailer:SMTPURLPW@mail.example.com:25", password: SMTPPW}}
storage:
  azure:
    accountname: acct
    container: c
    connectionstring: "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=AZKEY;EndpointSuffix=core.windows.net"
  delete: {enabled: true}
http:
  secret: HTTPSECRET
  headers: {X-Content-Type-Options: [nosniff]}
redis: {addrs: [r:6379], password: REDISPW, sentinelpassword: SENTINELPW}
proxy: {remoteurl: "https://puller:PROXYURLPW@upstream.example.com", username: puller, password: PROXYPW}
notifications:
  endpoints:
    - name: a
      url: "https://hook:HOOKURLPW@a.example.com/e"
      headers: {Authorization: [Bearer BEARER], X-Api-Key: [APIKEY], X-Source: [berth]}
health:
  http: [{uri: "http://u:HEALTHPW@h.example.com/", headers: {Cookie: [COOKIE]}}]
`

var secretWordsInFile = []string{"FIELDTOKEN", "FIELDACCOUNTKEY", "FIELDSIG", "SMTPURLPW", "SMTPPW", "AZKEY", "HTTPSECRET", "REDISPW", "SENTINELPW",
	"PROXYURLPW", "PROXYPW", "HOOKURLPW", "BEARER", "APIKEY", "HEALTHPW", "COOKIE"}

func TestRedactedHidesEverySecret(t *testing.T) {
	c := mustParse(t, secretsFile)
	s3 := mustParse(t, "version: 0.1\nstorage:\n  s3: {bucket: b, region: r, accesskey: S3ACCESS, secretkey: S3SECRET, sessiontoken: S3TOKEN}\n")
	gcs := mustParse(t, "version: 0.1\nstorage:\n  gcs:\n    credentials: {type: service_account, private_key: PRIVKEY, private_key_id: PRIVKEYID}\n")
	swift := mustParse(t, "version: 0.1\nstorage:\n  swift: {authurl: 'https://k:SWIFTURLPW@ks.example.com/v3', username: u, password: SWIFTPW, secretkey: SWIFTTEMPKEY}\n")
	azure := mustParse(t, "version: 0.1\nstorage:\n  azure: {accountname: a, accountkey: AZACCOUNTKEY, container: c, credentials: {type: client_secret, clientid: id, tenantid: t, secret: AZCLIENTSECRET}}\n")
	all := append(secretWordsInFile, "S3ACCESS", "S3SECRET", "S3TOKEN", "PRIVKEY", "SWIFTURLPW", "SWIFTPW", "SWIFTTEMPKEY", "AZACCOUNTKEY", "AZCLIENTSECRET")
	for _, cfg := range []*Config{c, s3, gcs, swift, azure} {
		out, err := cfg.RedactedYAML()
		if err != nil {
			t.Fatal(err)
		}
		m, err := cfg.RedactedMap()
		if err != nil {
			t.Fatal(err)
		}
		js, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range all {
			if strings.Contains(string(out), s) {
				t.Errorf("redacted YAML shows %s:\n%s", s, out)
			}
			if strings.Contains(string(js), s) {
				t.Errorf("redacted JSON shows %s:\n%s", s, js)
			}
		}
	}
	out, _ := c.RedactedYAML()
	for _, keep := range []string{"nosniff", "berth", "https://" + Redaction + "@upstream.example.com", "BlobEndpoint=https://a.example.com", "AccountKey=" + Redaction,
		"username: puller", "service: registry", "enabled: true"} {
		if !strings.Contains(string(out), keep) {
			t.Errorf("redacted YAML lost %q:\n%s", keep, out)
		}
	}
	if c.HTTP.Secret != "HTTPSECRET" || c.Notifications.Endpoints[0].Headers["Authorization"][0] != "Bearer BEARER" {
		t.Error("redaction changed the original configuration")
	}
	if _, p := s3.Storage.Driver(); p["secretkey"] != "S3SECRET" {
		t.Error("redaction changed the original driver parameters")
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
