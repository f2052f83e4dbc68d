package config

import (
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// envPrefix starts every override, as in Distribution.
const envPrefix = "REGISTRY_"

var (
	configType  = reflect.TypeFor[Config]()
	storageType = reflect.TypeFor[Storage]()
	authType    = reflect.TypeFor[Auth]()
	freeMap     = reflect.TypeFor[map[string]any]()
)

// applyEnv applies REGISTRY_* overrides to the generic tree before it is
// decoded, so an override is checked exactly as the file is. The name after
// the prefix is the key path with "_" between levels, matched against the
// schema without regard to case; a number picks a list item. The value is
// YAML, so it can carry a list or a map. Variables are applied in name
// order, so REGISTRY_STORAGE (switching driver) comes before
// REGISTRY_STORAGE_S3_BUCKET (filling it), as in Distribution.
func (p *parser) applyEnv(root map[string]any, environ []string) {
	type kv struct{ name, value string }
	var vars []kv
	for _, e := range environ {
		name, value, ok := strings.Cut(e, "=")
		if ok && strings.HasPrefix(name, envPrefix) {
			vars = append(vars, kv{name, value})
		}
	}
	slices.SortStableFunc(vars, func(a, b kv) int { return strings.Compare(a.name, b.name) })
	for _, v := range vars {
		segs := strings.Split(strings.TrimPrefix(v.name, envPrefix), "_")
		if strings.EqualFold(segs[0], "version") {
			p.warn("ignoring environment variable %s: the version comes from the file", v.name)
			continue
		}
		e := envSetter{p: p, name: v.name, value: v.value}
		e.set(root, configType, segs, "")
	}
}

type envSetter struct {
	p           *parser
	name, value string
}

func (e *envSetter) where() string { return "environment variable " + e.name }

func (e *envSetter) ignore(reason string) {
	e.p.warn("ignoring environment variable %s: %s", e.name, reason)
}

// parsed is the variable's value read as YAML; a value that is not valid
// YAML is taken as a plain string.
func (e *envSetter) parsed(path string) any {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(e.value), &n); err != nil {
		return e.value
	}
	where := func(int) string { return e.where() }
	return e.p.convert(&n, path, where)
}

// record forgets where the keys below path came from and notes that path
// now comes from this variable.
func (e *envSetter) record(path string) {
	e.forget(path)
	e.p.sources[strings.ToLower(path)] = e.where()
}

// forget drops the recorded sources of path and everything below it.
func (e *envSetter) forget(path string) {
	lower := strings.ToLower(path)
	for k := range e.p.sources {
		if k == lower || strings.HasPrefix(k, lower+".") || strings.HasPrefix(k, lower+"[") {
			delete(e.p.sources, k)
		}
	}
}

// set applies the variable at segs below node, whose schema type is t, and
// returns the node's new value.
func (e *envSetter) set(node any, t reflect.Type, segs []string, path string) any {
	if len(segs) == 0 {
		e.record(path)
		return e.parsed(path)
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		return e.setStruct(node, t, segs, path)
	case reflect.Map:
		return e.setMap(node, t.Elem(), segs, path)
	case reflect.Slice:
		return e.setList(node, t.Elem(), segs, path)
	case reflect.Interface:
		if l, ok := node.([]any); ok {
			return e.setList(l, t, segs, path)
		}
		return e.setMap(node, t, segs, path)
	}
	e.ignore(path + " takes a single value, not " + strings.Join(segs, "_"))
	return node
}

func (e *envSetter) container(node any, path string) (map[string]any, bool) {
	switch m := node.(type) {
	case map[string]any:
		return m, true
	case nil:
		return map[string]any{}, true
	}
	e.p.problems = append(e.p.problems, Problem{Where: e.where(), Key: path,
		Msg: "cannot set a key inside " + describeValue(node)})
	return nil, false
}

func (e *envSetter) setStruct(node any, t reflect.Type, segs []string, path string) any {
	m, ok := e.container(node, path)
	if !ok {
		return node
	}
	if t == storageType && len(segs) >= 1 && !isStorageShared(segs[0]) || t == storageType && strings.EqualFold(segs[0], "gc") {
		// A driver's section: its keys belong to the driver. storage.gc,
		// the old place of berth.storage.gc, is decoded later.
		return e.setMap(m, freeMap, segs, path)
	}
	var field reflect.StructField
	found := false
	for i := range t.NumField() {
		f := t.Field(i)
		if f.IsExported() && yamlKey(f) != "-" && strings.EqualFold(yamlKey(f), segs[0]) {
			field, found = f, true
			break
		}
	}
	if !found {
		if path == "" {
			e.ignore("no configuration section " + strings.ToLower(segs[0]))
		} else {
			e.ignore(path + " has no key " + strings.ToLower(segs[0]))
		}
		return m
	}
	key, old, exists := lookup(m, yamlKey(field))
	if !exists {
		key = yamlKey(field)
	}
	child := join(path, key)
	if len(segs) == 1 && (field.Type == storageType || field.Type == authType) {
		m[key] = e.switchType(old, child)
		return m
	}
	m[key] = e.set(old, field.Type, segs[1:], child)
	return m
}

// switchType handles REGISTRY_STORAGE and REGISTRY_AUTH. A name selects that
// driver (or auth type): the file's section for it is kept if it already
// selects it, and replaced by an empty one otherwise, so parameters for
// the new driver come only from the environment. The shared storage keys
// (delete, maintenance, …) stay. A map replaces the whole section.
func (e *envSetter) switchType(old any, path string) any {
	v := e.parsed(path)
	name, ok := v.(string)
	if !ok || name == "" {
		e.record(path)
		return v
	}
	m, _ := old.(map[string]any)
	out := map[string]any{}
	kept := false
	for k, val := range m {
		switch {
		case strings.EqualFold(k, name):
			out[k], kept = val, true
		case strings.EqualFold(path, "storage") && isStorageShared(k):
			out[k] = val
		default:
			e.forget(join(path, k))
		}
	}
	if !kept {
		out[name] = map[string]any{}
		e.record(join(path, name))
	}
	return out
}

func (e *envSetter) setMap(node any, elem reflect.Type, segs []string, path string) any {
	m, ok := e.container(node, path)
	if !ok {
		return node
	}
	// Keys with underscores (azure's max_retries, gcs's private_key) are
	// reachable when the file already has them: try the longest run of
	// segments that names an existing key.
	for n := len(segs); n >= 1; n-- {
		want := strings.Join(segs[:n], "_")
		if k, old, exists := lookup(m, want); exists {
			m[k] = e.set(old, elem, segs[n:], join(path, k))
			return m
		}
	}
	key := strings.ToLower(segs[0])
	m[key] = e.set(nil, elem, segs[1:], join(path, key))
	return m
}

func (e *envSetter) setList(node any, elem reflect.Type, segs []string, path string) any {
	var l []any
	switch v := node.(type) {
	case []any:
		l = v
	case nil:
	default:
		e.p.problems = append(e.p.problems, Problem{Where: e.where(), Key: path,
			Msg: "cannot set a list item inside " + describeValue(node)})
		return node
	}
	i, err := strconv.Atoi(segs[0])
	if err != nil || i < 0 {
		e.p.problems = append(e.p.problems, Problem{Where: e.where(), Key: path,
			Msg: "expected a list index after " + path + ", got " + strconv.Quote(segs[0])})
		return node
	}
	if i > len(l) {
		e.p.problems = append(e.p.problems, Problem{Where: e.where(), Key: path,
			Msg: "index " + segs[0] + " is past the end of the list (" + strconv.Itoa(len(l)) + " items; the next index may add one)"})
		return node
	}
	child := path + "[" + segs[0] + "]"
	if i == len(l) {
		l = append(l, e.set(nil, elem, segs[1:], child))
	} else {
		l[i] = e.set(l[i], elem, segs[1:], child)
	}
	return l
}

func isStorageShared(k string) bool { return slices.Contains(storageShared, strings.ToLower(k)) }

func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}
