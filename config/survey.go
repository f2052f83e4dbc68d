package config

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// NoEffectWarning starts the warning given for each key present that
// Berth accepts and ignores.
const NoEffectWarning = "accepted for compatibility, no effect in Berth: "

// UnknownKeyWarning starts the warning given for each key no section has:
// CNCF Distribution ignores those (outside storage and auth), so Berth
// does too rather than refuse a file registry:3 runs.
const UnknownKeyWarning = "unknown key, ignored as CNCF Distribution ignores it: "

// survey walks the configuration as written, before it is decoded, and
// against the schema: it drops unknown keys with a warning and notes each
// key present whose status is NoEffect. storage's driver sections and
// auth's types are left to their own checks, which refuse what
// Distribution refuses; so is the old top-level loglevel.
//
// Inside a NoEffect section unknown keys are still dropped, but no key
// below it is noted again. The berth section is Berth's own and
// Distribution ignores all of it, so an unknown key there is left for the
// decoder to refuse: a typo in it would otherwise pass unseen.
func (p *parser) survey(m map[string]any, t reflect.Type, path, schema string) {
	p.surveyIn(m, t, path, schema, false)
}

func (p *parser) surveyIn(m map[string]any, t reflect.Type, path, schema string, quiet bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	fields := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		if k := yamlKey(f); f.IsExported() && k != "-" {
			fields[strings.ToLower(k)] = f
		}
	}
	for _, k := range sortedKeys(m) {
		lk := strings.ToLower(k)
		f, ok := fields[lk]
		if !ok {
			if t == storageType || t == authType || path == "" && lk == "loglevel" || schema == "berth" || strings.HasPrefix(schema, "berth.") {
				continue // decided elsewhere: a driver, an auth type, a Berth key
			}
			p.warn("%s%s", UnknownKeyWarning, join(path, k))
			delete(m, k)
			continue
		}
		childPath, childSchema := join(path, k), join(schema, lk)
		childQuiet := quiet
		if st, _ := statusOf(childSchema); st == NoEffect && !quiet {
			p.noEffect = append(p.noEffect, childPath)
			childQuiet = true
		}
		switch v := m[k].(type) {
		case map[string]any:
			if isStruct(f.Type) {
				p.surveyIn(v, f.Type, childPath, childSchema, childQuiet)
			}
		case []any:
			if f.Type.Kind() == reflect.Slice && isStruct(f.Type.Elem()) {
				for i, item := range v {
					if im, isMap := item.(map[string]any); isMap {
						p.surveyIn(im, f.Type.Elem(), childPath+"["+strconv.Itoa(i)+"]", childSchema+"[]", childQuiet)
					}
				}
			}
		}
	}
}

// noEffectWarnings turns the keys survey noted into warnings, one each.
func (p *parser) noEffectWarnings() {
	slices.Sort(p.noEffect)
	for _, k := range p.noEffect {
		p.warn("%s%s", NoEffectWarning, k)
	}
}
