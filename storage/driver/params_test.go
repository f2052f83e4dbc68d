package driver

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

type testCredentials struct {
	Type       string `yaml:"type"`
	PrivateKey string `yaml:"private_key"`
}

type testParams struct {
	RootDirectory string        `yaml:"rootdirectory"`
	MaxThreads    int           `yaml:"maxthreads"`
	ChunkSize     int64         `yaml:"chunksize"`
	Parts         uint8         `yaml:"parts"`
	Secure        bool          `yaml:"secure"`
	Ratio         float64       `yaml:"ratio"`
	Timeout       time.Duration `yaml:"timeout"`
	Hosts         []string      `yaml:"hosts"`
	Tags          map[string]string
	Credentials   testCredentials `yaml:"credentials"`
	Extra         any             `yaml:"extra"`
	Ignored       string          `yaml:"-"`
}

func TestDecodeParamsAcceptsTypedAndStringValues(t *testing.T) {
	tests := []struct {
		name   string
		params Params
		want   testParams
	}{
		{"yaml types", Params{
			"rootdirectory": "/data", "maxthreads": 50, "chunksize": int64(5 << 20), "parts": 3,
			"secure": true, "ratio": 0.5, "timeout": "1m30s", "hosts": []any{"a", "b"},
		}, testParams{RootDirectory: "/data", MaxThreads: 50, ChunkSize: 5 << 20, Parts: 3,
			Secure: true, Ratio: 0.5, Timeout: 90 * time.Second, Hosts: []string{"a", "b"}}},
		{"strings from the environment", Params{
			"maxthreads": "50", "chunksize": "5242880", "parts": "3", "secure": "true",
			"ratio": "0.5", "timeout": "10s", "hosts": "a, b,,c",
		}, testParams{MaxThreads: 50, ChunkSize: 5242880, Parts: 3, Secure: true,
			Ratio: 0.5, Timeout: 10 * time.Second, Hosts: []string{"a", "b", "c"}}},
		{"keys match without regard to case", Params{"RootDirectory": "/x", "MAXTHREADS": 7},
			testParams{RootDirectory: "/x", MaxThreads: 7}},
		{"untagged field uses its lower-case name", Params{"tags": map[string]any{"team": "a"}},
			testParams{Tags: map[string]string{"team": "a"}}},
		{"nested section", Params{"credentials": map[string]any{"type": "service_account", "private_key": "k"}},
			testParams{Credentials: testCredentials{Type: "service_account", PrivateKey: "k"}}},
		{"numbers fill strings", Params{"rootdirectory": 1234}, testParams{RootDirectory: "1234"}},
		{"integral float fills an int", Params{"maxthreads": 1e3}, testParams{MaxThreads: 1000}},
		{"bare integer duration counts nanoseconds", Params{"timeout": 1500}, testParams{Timeout: 1500}},
		{"null sets zero", Params{"hosts": nil, "maxthreads": nil}, testParams{}},
		{"any keeps the value", Params{"extra": map[string]any{"k": 1}}, testParams{Extra: map[string]any{"k": 1}}},
		{"nil params", nil, testParams{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got testParams
			if err := DecodeParams(tt.params, &got); err != nil {
				t.Fatalf("DecodeParams: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeParamsRefusesWithKeyAndExpectedType(t *testing.T) {
	tests := []struct {
		name   string
		params Params
		want   []string
	}{
		{"unknown key lists accepted keys", Params{"rootdir": "/x"},
			[]string{`rootdir: unknown key (accepted: chunksize, credentials, extra, hosts, maxthreads, parts, ratio, rootdirectory, secure, tags, timeout)`}},
		{"unknown nested key", Params{"credentials": map[string]any{"kind": "x"}},
			[]string{`credentials.kind: unknown key (accepted: private_key, type)`}},
		{"int", Params{"maxthreads": "lots"}, []string{`maxthreads: expected an integer, got "lots"`}},
		{"int from fraction", Params{"maxthreads": 1.5}, []string{`maxthreads: expected an integer, got 1.5`}},
		{"int overflow", Params{"parts": 300}, []string{`parts: expected a non-negative integer, got 300`}},
		{"negative unsigned", Params{"parts": -1}, []string{`parts: expected a non-negative integer, got -1`}},
		{"bool", Params{"secure": "maybe"}, []string{`secure: expected a boolean, got "maybe"`}},
		{"float", Params{"ratio": "half"}, []string{`ratio: expected a number, got "half"`}},
		{"duration", Params{"timeout": "soon"}, []string{`timeout: expected a duration such as "10s" or "24h", got "soon"`}},
		{"duration from float", Params{"timeout": 1.5}, []string{`timeout: expected a duration such as "10s" or "24h", got 1.5`}},
		{"list", Params{"hosts": map[string]any{"a": 1}}, []string{`hosts: expected a list, got a map`}},
		{"list item", Params{"hosts": []any{"a", []any{}}}, []string{`hosts[1]: expected a string, got a list`}},
		{"string", Params{"rootdirectory": []any{"a"}}, []string{`rootdirectory: expected a string, got a list`}},
		{"map", Params{"credentials": "file.json"}, []string{`credentials: expected a map, got "file.json"`}},
		{"same key twice in different case", Params{"secure": true, "SECURE": false},
			[]string{`secure: given twice (also as "SECURE")`}},
		{"every problem is reported", Params{"maxthreads": "x", "secure": "y", "nope": 1}, []string{
			`maxthreads: expected an integer`, `nope: unknown key`, `secure: expected a boolean`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got testParams
			err := DecodeParams(tt.params, &got)
			if err == nil {
				t.Fatal("DecodeParams succeeded, want an error")
			}
			var pe *ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParamError", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d errors %q, want %d", len(lines), lines, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("error %d = %q, want prefix %q", i, lines[i], w)
				}
			}
		})
	}
}

func TestDecodeParamsKeepsDefaultsOfAbsentKeys(t *testing.T) {
	got := testParams{MaxThreads: 100, RootDirectory: "/var/lib/registry"}
	if err := DecodeParams(Params{"rootdirectory": "/srv"}, &got); err != nil {
		t.Fatal(err)
	}
	if got.MaxThreads != 100 || got.RootDirectory != "/srv" {
		t.Errorf("got %+v, want maxthreads 100 kept and rootdirectory /srv", got)
	}
}

func TestDecodeParamsNeedsStructPointer(t *testing.T) {
	var p testParams
	for _, into := range []any{nil, p, new(int)} {
		if err := DecodeParams(Params{}, into); err == nil {
			t.Errorf("DecodeParams(%T) succeeded, want an error", into)
		}
	}
}
