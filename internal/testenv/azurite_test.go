package testenv

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestAnswersAsAzuriteRefusesAnotherServer: a port answered by another
// server (a Berth another test started on the port Azurite was given) is
// not taken for Azurite.
func TestAnswersAsAzuriteRefusesAnotherServer(t *testing.T) {
	for _, tc := range []struct {
		server string
		ok     bool
	}{
		{"Azurite-Blob/3.37.0", true},
		{"", false},
		{"MinIO", false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.server != "" {
				w.Header().Set("Server", tc.server)
			}
			w.WriteHeader(http.StatusBadRequest)
		}))
		res, err := srv.Client().Get(srv.URL + "/" + AzuriteAccount)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		err = answersAsAzurite(res)
		srv.Close()
		if (err == nil) != tc.ok {
			t.Errorf("a server naming itself %q: %v, want accepted %v", tc.server, err, tc.ok)
		}
	}
}
