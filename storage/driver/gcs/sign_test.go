package gcs

import (
	"net/url"
	"testing"
	"time"

	"cloud.google.com/go/storage"
)

// TestSignedURLsAsGoogleClientSignsThem: the driver's V4 signing gives
// the URL Google's Go client gives for the same key, object, method and
// time, object names that need escaping included. GCS refuses a URL whose
// canonical form differs by a byte, and the emulator the other tests use
// checks no signature.
func TestSignedURLsAsGoogleClientSignsThem(t *testing.T) {
	sa, _ := serviceAccountKey(t)
	email, pemKey := sa["client_email"].(string), sa["private_key"].(string)
	k, err := parseKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, host string
		insecure   bool
		method     string
		key        string
	}{
		{"blob", "", false, "GET", "docker/registry/v2/blobs/sha256/ab/abcdef/data"},
		{"head on an emulator", "127.0.0.1:4443", true, "HEAD", "root/blob"},
		{"reserved characters", "", false, "GET", "root dir/with space+plus/a:b@c=d&e~f,g;h$i!j'k(l)m*n"},
		{"not ASCII, a percent", "", false, "GET", "ünï/cödé/%41"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			want, err := storage.SignedURL("bkt", tt.key, &storage.SignedURLOptions{
				GoogleAccessID: email,
				PrivateKey:     []byte(pemKey),
				Method:         tt.method,
				// The client counts the expiry from its own clock, a moment
				// after before: the half second keeps it at 1200 s.
				Expires:  before.Add(redirectExpiry + 500*time.Millisecond),
				Scheme:   storage.SigningSchemeV4,
				Hostname: tt.host,
				Insecure: tt.insecure,
			})
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(want)
			if err != nil {
				t.Fatal(err)
			}
			signedAt, err := time.Parse("20060102T150405Z", u.Query().Get("X-Goog-Date"))
			if err != nil {
				t.Fatal(err)
			}
			host := tt.host
			if host == "" {
				host = "storage.googleapis.com"
			}
			s := &signer{email: email, key: k, host: host, insecure: tt.insecure}
			got, err := s.sign(tt.method, "bkt", tt.key, signedAt, redirectExpiry)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("signed URL\n got %s\nwant %s", got, want)
			}
		})
	}
}
