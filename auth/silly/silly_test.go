package silly

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/berth-registry/berth/registry"
)

func TestSillyLetsThroughAnyAuthorizationAndChallengesWithout(t *testing.T) {
	c := New("https://auth.example.com/token", "registry.example.com")
	pull := []registry.Access{{Type: "repository", Name: "lib/app", Actions: []string{"pull", "push"}}}
	tests := []struct {
		name          string
		authorization string
		access        []registry.Access
		wantErr       bool
		challenge     string
	}{
		{"any bearer", "Bearer whatever", pull, false, ""},
		{"any basic", "Basic Zm9vOmJhcg==", nil, false, ""},
		{"none on the base", "", nil, true, `Bearer realm="https://auth.example.com/token",service="registry.example.com"`},
		{"none on a repository", "", pull, true, `Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:lib/app:pull,push"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
			if tt.authorization != "" {
				r.Header.Set("Authorization", tt.authorization)
			}
			w := httptest.NewRecorder()
			_, err := c.Authorize(w, r, tt.access)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Authorize: %v", err)
				}
				return
			}
			var re *registry.Error
			if !errors.As(err, &re) || re.Code != registry.CodeUnauthorized {
				t.Fatalf("error %v, want UNAUTHORIZED", err)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("challenge %q, want %q", got, tt.challenge)
			}
		})
	}
}
