package driver

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ParamError is one problem with one key of a configuration section. Key is
// the path below the decoded section ("maxthreads", "credentials.type",
// "endpoints[2].url"); the caller prefixes the section ("storage.s3.").
type ParamError struct {
	Key string
	Msg string
}

func (e *ParamError) Error() string {
	if e.Key == "" {
		return e.Msg
	}
	return e.Key + ": " + e.Msg
}

// DecodeParams decodes params strictly into the struct into points to. Keys
// match the fields' `yaml:"name"` tags (or lower-cased field names) without
// regard to case; a key no field accepts is an error that lists the accepted
// keys. Values may be YAML-typed or strings, because environment overrides
// and hand-written configs mix both: "5" fills an int, "true" a bool, "10s" a
// time.Duration, and "a,b" a []string. An integer for a time.Duration counts
// nanoseconds, as in Distribution.
//
// Every problem found is reported: the error joins one *ParamError per key.
// A null value sets a scalar, list or map to its zero value and leaves a
// nested struct as it was, so defaults set in into before the call survive
// an empty section.
func DecodeParams(params Params, into any) error {
	rv := reflect.ValueOf(into)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("driver: DecodeParams needs a non-nil pointer to a struct, got %T", into)
	}
	var d paramDecoder
	d.value("", map[string]any(params), rv.Elem())
	errs := make([]error, len(d.errs))
	for i, e := range d.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

type paramDecoder struct {
	errs []*ParamError
}

var durationType = reflect.TypeFor[time.Duration]()

func (d *paramDecoder) fail(key, format string, args ...any) {
	d.errs = append(d.errs, &ParamError{Key: key, Msg: fmt.Sprintf(format, args...)})
}

// value decodes src into dst, reporting problems under key.
func (d *paramDecoder) value(key string, src any, dst reflect.Value) {
	if src == nil {
		if dst.Kind() != reflect.Struct && dst.Kind() != reflect.Pointer {
			dst.SetZero()
		}
		return
	}
	if dst.Type() == durationType {
		d.duration(key, src, dst)
		return
	}
	switch dst.Kind() {
	case reflect.Pointer:
		if dst.IsNil() {
			dst.Set(reflect.New(dst.Type().Elem()))
		}
		d.value(key, src, dst.Elem())
	case reflect.Interface:
		if !reflect.TypeOf(src).AssignableTo(dst.Type()) {
			d.fail(key, "expected %s, got %s", dst.Type(), describe(src))
			return
		}
		dst.Set(reflect.ValueOf(src))
	case reflect.Struct:
		d.structure(key, src, dst)
	case reflect.Map:
		d.mapping(key, src, dst)
	case reflect.Slice:
		d.list(key, src, dst)
	case reflect.String:
		s, ok := scalarString(src)
		if !ok {
			d.fail(key, "expected a string, got %s", describe(src))
			return
		}
		dst.SetString(s)
	case reflect.Bool:
		d.boolean(key, src, dst)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		d.integer(key, src, dst)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		d.unsigned(key, src, dst)
	case reflect.Float32, reflect.Float64:
		d.float(key, src, dst)
	default:
		d.fail(key, "cannot decode into a field of type %s", dst.Type())
	}
}

// fieldKey is the configuration key of a struct field: its yaml tag's name,
// or its lower-cased name. "-" means the field has no key.
func fieldKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}

func (d *paramDecoder) structure(key string, src any, dst reflect.Value) {
	m, ok := asMap(src)
	if !ok {
		d.fail(key, "expected a map, got %s", describe(src))
		return
	}
	t := dst.Type()
	fields := map[string]int{} // lower-case key → field index
	var accepted []string
	for i := range t.NumField() {
		f := t.Field(i)
		k := fieldKey(f)
		if !f.IsExported() || k == "-" {
			continue
		}
		fields[strings.ToLower(k)] = i
		accepted = append(accepted, k)
	}
	slices.Sort(accepted)
	seen := map[int]string{}
	// Sorted keys give errors in a stable order.
	for _, k := range sortedKeys(m) {
		i, ok := fields[strings.ToLower(k)]
		if !ok {
			d.fail(join(key, k), "unknown key (accepted: %s)", strings.Join(accepted, ", "))
			continue
		}
		if prev, dup := seen[i]; dup {
			d.fail(join(key, k), "given twice (also as %q)", prev)
			continue
		}
		seen[i] = k
		d.value(join(key, k), m[k], dst.Field(i))
	}
}

func (d *paramDecoder) mapping(key string, src any, dst reflect.Value) {
	m, ok := asMap(src)
	if !ok {
		d.fail(key, "expected a map, got %s", describe(src))
		return
	}
	if dst.Type().Key().Kind() != reflect.String {
		d.fail(key, "cannot decode into a map keyed by %s", dst.Type().Key())
		return
	}
	out := reflect.MakeMapWithSize(dst.Type(), len(m))
	for _, k := range sortedKeys(m) {
		elem := reflect.New(dst.Type().Elem()).Elem()
		d.value(join(key, k), m[k], elem)
		out.SetMapIndex(reflect.ValueOf(k).Convert(dst.Type().Key()), elem)
	}
	dst.Set(out)
}

func (d *paramDecoder) list(key string, src any, dst reflect.Value) {
	items, ok := asList(src)
	if !ok {
		s, isString := src.(string)
		if !isString || dst.Type().Elem().Kind() != reflect.String {
			d.fail(key, "expected a list, got %s", describe(src))
			return
		}
		// A comma-separated string stands for a list of strings, the
		// shape environment variables give most easily.
		items = nil
		for part := range strings.SplitSeq(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				items = append(items, part)
			}
		}
	}
	out := reflect.MakeSlice(dst.Type(), len(items), len(items))
	for i, item := range items {
		d.value(fmt.Sprintf("%s[%d]", key, i), item, out.Index(i))
	}
	dst.Set(out)
}

func (d *paramDecoder) boolean(key string, src any, dst reflect.Value) {
	switch v := src.(type) {
	case bool:
		dst.SetBool(v)
		return
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(v)); err == nil {
			dst.SetBool(b)
			return
		}
	}
	d.fail(key, "expected a boolean, got %s", describe(src))
}

func (d *paramDecoder) integer(key string, src any, dst reflect.Value) {
	n, ok := toInt64(src)
	if !ok {
		d.fail(key, "expected an integer, got %s", describe(src))
		return
	}
	if dst.OverflowInt(n) {
		d.fail(key, "%d is out of range for this key", n)
		return
	}
	dst.SetInt(n)
}

func (d *paramDecoder) unsigned(key string, src any, dst reflect.Value) {
	n, ok := toInt64(src)
	if !ok {
		if u, isU := src.(uint64); isU && !dst.OverflowUint(u) {
			dst.SetUint(u)
			return
		}
		d.fail(key, "expected a non-negative integer, got %s", describe(src))
		return
	}
	if n < 0 || dst.OverflowUint(uint64(n)) {
		d.fail(key, "expected a non-negative integer, got %d", n)
		return
	}
	dst.SetUint(uint64(n))
}

func (d *paramDecoder) float(key string, src any, dst reflect.Value) {
	var f float64
	switch v := src.(type) {
	case float64:
		f = v
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
			d.fail(key, "expected a number, got %s", describe(src))
			return
		}
	default:
		n, ok := toInt64(src)
		if !ok {
			d.fail(key, "expected a number, got %s", describe(src))
			return
		}
		f = float64(n)
	}
	dst.SetFloat(f)
}

func (d *paramDecoder) duration(key string, src any, dst reflect.Value) {
	if s, ok := src.(string); ok {
		dur, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			d.fail(key, "expected a duration such as \"10s\" or \"24h\", got %s", describe(src))
			return
		}
		dst.SetInt(int64(dur))
		return
	}
	if _, isFloat := src.(float64); !isFloat {
		if n, ok := toInt64(src); ok {
			dst.SetInt(n) // nanoseconds, as Distribution reads a bare number
			return
		}
	}
	d.fail(key, "expected a duration such as \"10s\" or \"24h\", got %s", describe(src))
}

// toInt64 accepts Go integers of any size, integral floats and decimal
// strings.
func toInt64(src any) (int64, bool) {
	switch v := src.(type) {
	case int:
		return int64(v), true
	case int8:
		return int64(v), true
	case int16:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case uint:
		return int64(v), v <= math.MaxInt64
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	case uint64:
		return int64(v), v <= math.MaxInt64
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<63 {
			return int64(v), true
		}
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// scalarString gives the text of a scalar; YAML reads `password: 1234` as a
// number, but the key wants a string.
func scalarString(src any) (string, bool) {
	switch v := src.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case fmt.Stringer:
		return v.String(), true
	}
	if n, ok := toInt64(src); ok {
		return strconv.FormatInt(n, 10), true
	}
	if u, ok := src.(uint64); ok {
		return strconv.FormatUint(u, 10), true
	}
	return "", false
}

// describe names a value for an error message: strings quoted, other
// scalars as written, collections by their kind.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "nothing"
	case string:
		return strconv.Quote(v)
	}
	if _, ok := asMap(v); ok {
		return "a map"
	}
	if _, ok := asList(v); ok {
		return "a list"
	}
	if s, ok := scalarString(v); ok {
		return s
	}
	return fmt.Sprintf("a value of type %T", v)
}

// asMap accepts the map shapes a section may hold: decoded YAML and
// Params built by hand.
func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case Params:
		return m, true
	case map[string]string:
		out := make(map[string]any, len(m))
		for k, s := range m {
			out[k] = s
		}
		return out, true
	}
	return nil, false
}

func asList(v any) ([]any, bool) {
	switch l := v.(type) {
	case []any:
		return l, true
	case []string:
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out, true
	}
	return nil, false
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
