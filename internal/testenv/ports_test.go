package testenv

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestStartOnFreePortsGivesUpAPortAnotherServerHolds: a server that could
// not bind its port (it exits) while another answers there, as a Berth
// another test started would (404 on the readiness URL), is started again
// on other ports rather than taken for ready.
func TestStartOnFreePortsGivesUpAPortAnotherServerHolds(t *testing.T) {
	answer := func(code int) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
		t.Cleanup(srv.Close)
		return srv
	}
	foreign, ours := answer(http.StatusNotFound), answer(http.StatusOK)
	starts := 0
	startOnFreePorts(t, "test server", 2, http.DefaultClient, func(ports []int) (*Process, string) {
		starts++
		if len(ports) != 2 || ports[0] == ports[1] {
			t.Errorf("ports %v, want two distinct", ports)
		}
		if starts == 1 {
			return StartProcess(t, "sh", []string{"-c", "exit 1"}, nil), foreign.URL + "/ready"
		}
		return StartProcess(t, "sleep", []string{"30"}, nil), ours.URL + "/ready"
	}, answersOK)
	if starts != 2 {
		t.Fatalf("started %d times, want 2: the foreign answer was taken for ready", starts)
	}
}
