package config

import (
	"reflect"
	"strings"
	"time"
)

// A schema path names a key as the table in keys.go does: lower case,
// sections joined with ".", "[]" for every item of a list
// ("notifications.endpoints[].url"). A key whose value is a free-form map
// or list (log.fields, http.headers) is one path.

// schemaPaths returns every key path of t below prefix: the leaves, and
// the sections (structs) on the way, each with whether it is a leaf.
func schemaPaths(t reflect.Type, prefix string, visit func(path string, leaf bool)) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[time.Duration]():
		visit(prefix, true)
	case t.Kind() == reflect.Struct:
		if prefix != "" {
			visit(prefix, false)
		}
		for i := range t.NumField() {
			f := t.Field(i)
			k := yamlKey(f)
			if !f.IsExported() || k == "-" {
				continue
			}
			schemaPaths(f.Type, join(prefix, strings.ToLower(k)), visit)
		}
	case t.Kind() == reflect.Slice && isStruct(t.Elem()):
		visit(prefix, false)
		schemaPaths(t.Elem(), prefix+"[]", visit)
	default:
		visit(prefix, true)
	}
}

func isStruct(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct && t != reflect.TypeFor[time.Duration]()
}
