package config

import (
	"reflect"
	"strings"
	"testing"
)

// TestEveryKeyHasAStatus is the rule that no key is parsed and silently
// ignored: a field added to the Config structs without a line in
// keyStatus fails here.
func TestEveryKeyHasAStatus(t *testing.T) {
	schema := map[string]bool{} // path → leaf
	schemaPaths(reflect.TypeFor[Config](), "", func(p string, leaf bool) { schema[p] = leaf })
	for p, leaf := range schema {
		if !leaf {
			continue
		}
		if _, ok := statusOf(p); !ok {
			t.Errorf("key %s has no status: add it to keyStatus in keys.go (Same, BerthOnly or NoEffect) and to docs/configuration.md", p)
		}
	}
	for p, st := range keyStatus {
		if _, ok := schema[p]; !ok {
			t.Errorf("keyStatus has %s, which no Config field has", p)
			continue
		}
		if !schema[p] && st != NoEffect {
			t.Errorf("keyStatus gives section %s the status %v: only NoEffect covers a whole section", p, st)
		}
		for q := p; strings.ContainsAny(q, ".["); {
			q = q[:strings.LastIndexAny(q, ".[")]
			if keyStatus[q] == NoEffect {
				t.Errorf("keyStatus has %s below %s, which is NoEffect as a whole", p, q)
			}
		}
	}
}

// TestBerthKeysLiveInTheBerthSection keeps Berth's own keys out of
// Distribution's sections, where they could break a shared file.
func TestBerthKeysLiveInTheBerthSection(t *testing.T) {
	// Keys that came before the berth section; Distribution ignores them
	// where they are (unknown keys in its typed sections).
	allowed := map[string]bool{
		"notifications.spool":                 true,
		"notifications.spoolmaxbytes":         true,
		"notifications.endpoints[].mediatype": true,
	}
	for p, st := range keyStatus {
		if st == BerthOnly && !strings.HasPrefix(p, "berth.") && !allowed[p] {
			t.Errorf("%s is Berth only: put it under berth.", p)
		}
		if strings.HasPrefix(p, "berth.") && st != BerthOnly {
			t.Errorf("%s is in the berth section but has status %v", p, st)
		}
	}
}

func TestNoEffectKeysWarnOncePerKey(t *testing.T) {
	c := mustParse(t, minimal+"policy:\n  repository:\n    classes: [image]\nlog:\n  hooks: [{type: mail}]\ntags:\n  maxtags: 5\n")
	want := []string{NoEffectWarning + "log.hooks", NoEffectWarning + "policy.repository.classes"}
	if !reflect.DeepEqual(c.NoEffect(), []string{"log.hooks", "policy.repository.classes"}) {
		t.Errorf("NoEffect() = %q", c.NoEffect())
	}
	if !reflect.DeepEqual(c.Warnings, want) {
		t.Errorf("warnings %q, want %q", c.Warnings, want)
	}
}

// TestValidationEnabledWinsOverDisabled: Distribution turns the checks on
// when the deprecated validation.enabled is true, whatever
// validation.disabled says, so the key takes effect and is not warned.
func TestValidationEnabledWinsOverDisabled(t *testing.T) {
	tests := []struct {
		name, section string
		disabled      bool
	}{
		{"disabled", "validation:\n  disabled: true\n", true},
		{"enabled and disabled", "validation:\n  enabled: true\n  disabled: true\n", false},
		{"enabled false", "validation:\n  enabled: false\n", false},
		{"enabled false and disabled", "validation:\n  enabled: false\n  disabled: true\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, minimal+tt.section)
			if c.Validation.Disabled != tt.disabled {
				t.Errorf("Validation.Disabled = %v, want %v", c.Validation.Disabled, tt.disabled)
			}
			if len(c.NoEffect()) != 0 {
				t.Errorf("no-effect keys %q, want none", c.NoEffect())
			}
		})
	}
}
