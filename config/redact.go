package config

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Redaction replaces every secret in Redacted's output.
const Redaction = "<redacted>"

// secretWords mark a key whose value is a secret when its name holds one
// of them, at any depth and in any section: http.secret, redis.password,
// storage.s3.accesskey, storage.azure.connectionstring, a header named
// Authorization. The rule goes by name so that a key added later is
// covered without anyone remembering to list it.
var secretWords = []string{"key", "secret", "password", "passwd", "token", "credential", "connectionstring", "authorization", "cookie", "signature"}

var (
	// userinfo is the user:password@ of a URL, anywhere in a value.
	userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@\s]+@`)
	// connSecret is a secret inside a connection string
	// (AccountKey=…; SharedAccessSignature=…; Password=…).
	connSecret = regexp.MustCompile(`(?i)\b(AccountKey|SharedAccessSignature|SharedAccessKey|Password|Pwd|sig)=[^;&\s]*`)
)

// isSecretKey reports whether a key's name says its value is a secret.
func isSecretKey(k string) bool {
	lower := strings.ToLower(k)
	for _, w := range secretWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// RedactedYAML renders c as YAML, defaults filled in, with every secret
// replaced by Redaction.
func (c *Config) RedactedYAML() ([]byte, error) {
	n, err := c.redactedNode()
	if err != nil {
		return nil, err
	}
	return yaml.Marshal(n)
}

// RedactedMap is c as plain values (for JSON), redacted as RedactedYAML.
func (c *Config) RedactedMap() (map[string]any, error) {
	n, err := c.redactedNode()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		return nil, fmt.Errorf("config: redacted map: %w", err)
	}
	// JSON cannot hold every YAML value (map[any]any from odd keys):
	// prove it marshals here rather than fail later.
	if _, err := json.Marshal(m); err != nil {
		return nil, fmt.Errorf("config: redacted map: %w", err)
	}
	return m, nil
}

func (c *Config) redactedNode() (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(c); err != nil {
		return nil, fmt.Errorf("config: render: %w", err)
	}
	redactNode(&n, false)
	return &n, nil
}

// redactNode hides, in place, the scalars under a secret key (secret
// set by the caller) and the credentials inside any string.
func redactNode(n *yaml.Node, secret bool) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			redactNode(c, false)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			redactNode(n.Content[i+1], isSecretKey(n.Content[i].Value))
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			redactNode(c, secret)
		}
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" || n.Value == "" {
			return
		}
		if secret {
			n.Value, n.Tag, n.Style = Redaction, "!!str", 0
			return
		}
		if n.ShortTag() == "!!str" {
			n.Value = RedactString(n.Value)
		}
	}
}

// RedactString hides the credentials a string may carry: the userinfo
// of every URL in it and the secrets of a connection string.
func RedactString(s string) string {
	s = userinfo.ReplaceAllString(s, "${1}"+Redaction+"@")
	return connSecret.ReplaceAllString(s, "${1}="+Redaction)
}

// RedactURL hides the userinfo of a URL that an error is about to quote,
// even a malformed one (https//user:pw@host, user:pw@host) that
// RedactString does not recognise: everything before its last '@'.
func RedactURL(raw string) string {
	s := RedactString(raw)
	if i := strings.LastIndex(s, "@"); i >= 0 && !strings.Contains(s[:i], Redaction) {
		s = Redaction + s[i:]
	}
	return s
}

// YAML renders c as YAML with defaults filled in, secrets included: use
// RedactedYAML to show a configuration.
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
