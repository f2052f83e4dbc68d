package config

import (
	"strings"
	"testing"
	"time"
)

func TestBerthHtpasswdLimitKeys(t *testing.T) {
	tests := []struct {
		name, data string
		env        []string
		want       BerthHtpasswd
	}{
		{"default: on", minimal, nil, BerthHtpasswd{MaxFailures: 10, FailureWindow: time.Minute}},
		{"from the file", minimal + "berth:\n  auth:\n    htpasswd:\n      maxfailures: 3\n      failurewindow: 5m\n", nil,
			BerthHtpasswd{MaxFailures: 3, FailureWindow: 5 * time.Minute}},
		{"off", minimal + "berth:\n  auth:\n    htpasswd:\n      maxfailures: 0\n", nil,
			BerthHtpasswd{MaxFailures: 0, FailureWindow: time.Minute}},
		{"from the environment", minimal, []string{"REGISTRY_BERTH_AUTH_HTPASSWD_MAXFAILURES=7", "REGISTRY_BERTH_AUTH_HTPASSWD_FAILUREWINDOW=30s"},
			BerthHtpasswd{MaxFailures: 7, FailureWindow: 30 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustParse(t, tt.data, tt.env...).Berth.Auth.Htpasswd; got != tt.want {
				t.Fatalf("berth.auth.htpasswd = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestBerthHtpasswdLimitRefusesNonsense(t *testing.T) {
	for data, want := range map[string]string{
		"maxfailures: -1":                         "berth.auth.htpasswd.maxfailures: must not be negative",
		"failurewindow: 0s":                       "berth.auth.htpasswd.failurewindow: must be positive",
		"maxfailures: 0\n      failurewindow: 0s": "",
		"maxfailure: 3":                           "berth.auth.htpasswd.maxfailure: unknown key",
	} {
		_, err := Parse("config.yml", []byte(minimal+"berth:\n  auth:\n    htpasswd:\n      "+data+"\n"), nil)
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", data, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: error %v, want one containing %q", data, err, want)
		}
	}
}
