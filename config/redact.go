package config

import (
	"maps"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/berth-registry/berth/storage/driver"
)

// Redaction replaces every secret in Redacted's output.
const Redaction = "<redacted>"

// secretParams are driver parameter names (at any depth) that hold
// secrets: s3 accesskey/secretkey/sessiontoken, azure accountkey and
// credentials.secret, swift password/secretkey, gcs credentials.private_key.
var secretParams = []string{"accesskey", "secretkey", "sessiontoken", "accountkey", "secret", "password", "private_key", "private_key_id", "clientsecret", "sas", "sastoken"}

// Redacted returns a copy of c with every secret replaced by Redaction:
// http.secret, passwords, the driver's keys, and header values that carry
// credentials. Use it to show a configuration.
func (c *Config) Redacted() *Config {
	r := *c
	r.Warnings = nil
	redact(&r.HTTP.Secret)
	redact(&r.Redis.Password)
	redact(&r.Redis.SentinelPassword)
	redact(&r.Proxy.Password)
	r.Berth.Mirrors = cloneSlice(c.Berth.Mirrors)
	for i := range r.Berth.Mirrors {
		redact(&r.Berth.Mirrors[i].Password)
	}
	r.Log.Hooks = cloneSlice(c.Log.Hooks)
	for i := range r.Log.Hooks {
		redact(&r.Log.Hooks[i].Options.SMTP.Password)
	}
	r.Notifications.Endpoints = cloneSlice(c.Notifications.Endpoints)
	for i := range r.Notifications.Endpoints {
		r.Notifications.Endpoints[i].Headers = redactHeaders(r.Notifications.Endpoints[i].Headers)
	}
	r.Health.HTTP = cloneSlice(c.Health.HTTP)
	for i := range r.Health.HTTP {
		r.Health.HTTP[i].Headers = redactHeaders(r.Health.HTTP[i].Headers)
	}
	r.HTTP.Headers = redactHeaders(c.HTTP.Headers)
	r.Storage.params = redactParams(c.Storage.params)
	return &r
}

// YAML renders c as YAML with defaults filled in. Call it on Redacted().
func (c *Config) YAML() ([]byte, error) {
	return yaml.Marshal(c)
}

// MarshalYAML writes the storage section in its file shape: the driver's
// section beside the shared keys.
func (s Storage) MarshalYAML() (any, error) {
	type shared Storage // drops this method, keeping the fields' tags
	var n yaml.Node
	if err := n.Encode(shared(s)); err != nil {
		return nil, err
	}
	var params yaml.Node
	if err := params.Encode(s.params); err != nil {
		return nil, err
	}
	key := &yaml.Node{Kind: yaml.ScalarNode, Value: s.driver}
	n.Content = append([]*yaml.Node{key, &params}, n.Content...)
	return &n, nil
}

func redact(s *string) {
	if *s != "" {
		*s = Redaction
	}
}

func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append([]T(nil), s...)
}

// redactHeaders hides the values of headers that carry credentials.
func redactHeaders(h map[string][]string) map[string][]string {
	if h == nil {
		return nil
	}
	out := make(map[string][]string, len(h))
	for k, v := range h {
		lower := strings.ToLower(k)
		secret := false
		for _, word := range []string{"auth", "token", "secret", "key", "cookie", "password", "signature"} {
			secret = secret || strings.Contains(lower, word)
		}
		if secret {
			v = []string{Redaction}
		}
		out[k] = v
	}
	return out
}

func redactParams(p driver.Params) driver.Params {
	if p == nil {
		return nil
	}
	out, _ := redactValue(map[string]any(p)).(map[string]any)
	return out
}

func redactValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := maps.Clone(v)
		for k, val := range out {
			if isSecretParam(k) && val != nil {
				out[k] = Redaction
				continue
			}
			out[k] = redactValue(val)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, val := range v {
			out[i] = redactValue(val)
		}
		return out
	}
	return v
}

func isSecretParam(k string) bool {
	lower := strings.ToLower(k)
	for _, s := range secretParams {
		if lower == s {
			return true
		}
	}
	return false
}
