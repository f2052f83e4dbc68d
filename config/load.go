package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/berth-registry/berth/storage/driver"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	Where string // "config.yml:12", "environment variable REGISTRY_HTTP_ADDR", or the file name
	Key   string // "storage.filesystem.maxthreads"; empty for the file as a whole
	Msg   string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Where != "" {
		b.WriteString(p.Where + ": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error lists every problem found in a configuration, one per line.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads the configuration file at path and applies the REGISTRY_*
// variables found in environ (os.Environ() in the program).
func Load(path string, environ []string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data, environ)
}

// Parse reads a configuration from data, named name in messages, and
// applies the REGISTRY_* variables found in environ. An error is an *Error
// naming each bad key, or a YAML syntax error.
func Parse(name string, data []byte, environ []string) (*Config, error) {
	p := &parser{name: name, sources: map[string]string{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	root := map[string]any{}
	if len(doc.Content) > 0 {
		n := doc.Content[0]
		if n.Kind != yaml.MappingNode && n.ShortTag() != "!!null" {
			return nil, &Error{[]Problem{{Where: name, Msg: "expected a map of sections at the top of the file"}}}
		}
		if m, ok := p.convert(n, "", p.fileLine).(map[string]any); ok {
			root = m
		}
	}
	normalizeSection(root, "storage")
	normalizeSection(root, "auth")
	p.applyEnv(root, environ)
	p.survey(root, configType, "", "")
	cfg := p.decode(root)
	if len(p.problems) > 0 {
		return nil, &Error{Problems: p.problems}
	}
	return cfg, nil
}

// Where tells where the key at path (such as "storage.s3.bucket") was set:
// "config.yml:12", an environment variable, or "" for a default. Use it to
// place errors found later, such as a driver's *driver.ParamError.
func (c *Config) Where(path string) string {
	return lookupSource(c.sources, path)
}

type parser struct {
	name     string
	sources  map[string]string // lower-case key path → where it was set
	problems []Problem
	warnings []string
	// oldGC is storage.gc as written, for legacyGC; gcKey is where the gc
	// settings were read from, for messages.
	oldGC *rawSection
	gcKey string
	// noEffect are the keys present, as written, whose status is NoEffect.
	noEffect []string
}

func (p *parser) fileLine(line int) string { return p.name + ":" + strconv.Itoa(line) }

func (p *parser) fail(path, format string, args ...any) {
	p.problems = append(p.problems, Problem{Where: lookupSource(p.sources, path), Key: path, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) warn(format string, args ...any) {
	p.warnings = append(p.warnings, fmt.Sprintf(format, args...))
}

// convert turns a YAML node into plain values (map[string]any, []any,
// string, int, float64, bool, nil), recording where each key was set.
func (p *parser) convert(n *yaml.Node, path string, where func(int) string) any {
	if path != "" {
		p.sources[strings.ToLower(path)] = where(n.Line)
	}
	switch n.Kind {
	case yaml.AliasNode:
		return p.convert(n.Alias, path, where)
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return p.convert(n.Content[0], path, where)
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		for i, c := range n.Content {
			out[i] = p.convert(c, fmt.Sprintf("%s[%d]", path, i), where)
		}
		return out
	case yaml.MappingNode:
		out := map[string]any{}
		p.mapping(n, path, where, out)
		return out
	}
	return scalar(n)
}

func (p *parser) mapping(n *yaml.Node, path string, where func(int) string, out map[string]any) {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		key := k.Value
		child := join(path, key)
		if k.Kind != yaml.ScalarNode {
			p.problems = append(p.problems, Problem{Where: where(k.Line), Key: path, Msg: "keys must be plain strings"})
			continue
		}
		if _, dup := out[key]; dup {
			// Distribution's YAML reader keeps the last; so does Berth.
			p.warn("%s is set twice (%s and %s): the last one is used, as in CNCF Distribution", child, p.sources[strings.ToLower(child)], where(k.Line))
		}
		p.sources[strings.ToLower(child)] = where(k.Line)
		out[key] = p.convert(v, child, where)
		p.sources[strings.ToLower(child)] = where(k.Line)
	}
	// YAML merge keys ("<<: *defaults") fill in what the map does not set.
	for _, m := range merges {
		for m.Kind == yaml.AliasNode {
			m = m.Alias
		}
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, s := range srcs {
			for s.Kind == yaml.AliasNode {
				s = s.Alias
			}
			if s.Kind != yaml.MappingNode {
				p.problems = append(p.problems, Problem{Where: where(s.Line), Key: path, Msg: "a merge key (<<) needs a map"})
				continue
			}
			merged := map[string]any{}
			p.mapping(s, path, where, merged)
			for k, v := range merged {
				if _, set := out[k]; !set {
					out[k] = v
				}
			}
		}
	}
}

func scalar(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!int", "!!float", "!!bool":
		var v any
		if err := n.Decode(&v); err == nil {
			return v
		}
	}
	// Strings, timestamps and unknown tags stay as written.
	return n.Value
}

// normalizeSection turns Distribution's short form "storage: inmemory"
// into "storage: {inmemory: {}}".
func normalizeSection(root map[string]any, section string) {
	k, v, ok := lookup(root, section)
	if !ok {
		return
	}
	if s, isString := v.(string); isString && s != "" {
		root[k] = map[string]any{s: map[string]any{}}
	}
}

// lookup finds key in m without regard to case.
func lookup(m map[string]any, key string) (string, any, bool) {
	if v, ok := m[key]; ok {
		return key, v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return k, v, true
		}
	}
	return "", nil, false
}

// take removes key from m, matched without regard to case.
func take(m map[string]any, key string) (string, any, bool) {
	k, v, ok := lookup(m, key)
	if ok {
		delete(m, k)
	}
	return k, v, ok
}

func lookupSource(sources map[string]string, path string) string {
	p := strings.ToLower(path)
	for p != "" {
		if s, ok := sources[p]; ok {
			return s
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return ""
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// decodeInto decodes section into the struct into points to, reporting
// problems under the key path prefix.
func (p *parser) decodeInto(prefix string, section any, into any) {
	m, ok := section.(map[string]any)
	if !ok {
		if section == nil {
			return
		}
		p.fail(prefix, "expected a map, got %s", describeValue(section))
		return
	}
	err := driver.DecodeParams(m, into)
	for _, e := range unjoin(err) {
		var pe *driver.ParamError
		if errors.As(e, &pe) {
			p.fail(join(prefix, pe.Key), "%s", pe.Msg)
		} else {
			p.fail(prefix, "%v", e)
		}
	}
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func describeValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "nothing"
	case string:
		return strconv.Quote(v)
	case map[string]any:
		return "a map"
	case []any:
		return "a list"
	}
	return fmt.Sprint(v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// NoEffect lists the key paths present in the configuration that Berth
// accepts for compatibility and ignores, sorted; each also has a warning.
func (c *Config) NoEffect() []string { return c.noEffect }
