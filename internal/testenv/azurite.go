package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
)

// Azurite's built-in account: the name and key Microsoft documents for the
// storage emulator, the same in every installation.
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Azurite is Azurite's Blob service on loopback, started by StartAzurite.
type Azurite struct {
	// ServiceURL is the account's endpoint: http://127.0.0.1:PORT/devstoreaccount1.
	ServiceURL string
	Account    string
	Key        string
	// HTTPClient trusts the server's certificate (StartAzuriteTLS).
	HTTPClient *http.Client
	// Client is signed with the account key, for tests that inspect or
	// prepare the server directly.
	Client *service.Client

	containers atomic.Int64
}

// StartAzurite starts azurite-blob (the pinned build from scripts/tools.sh)
// on a free loopback port with a temporary data directory, waits until it
// answers, and stops it when the test ends.
func StartAzurite(t testing.TB) *Azurite {
	t.Helper()
	return startAzurite(t, "", "", "")
}

// StartAzuriteTLS is StartAzurite serving HTTPS with the PEM certificate
// and key given, which caFile's certificate signed: the SAS URLs the
// azure driver redirects to are HTTPS-only (spr=https), and Azurite
// refuses them over plain HTTP. Give caFile to clients as SSL_CERT_FILE
// (Berth, docker's certs.d) or through HTTPClient.
func StartAzuriteTLS(t testing.TB, certFile, keyFile, caFile string) *Azurite {
	t.Helper()
	return startAzurite(t, certFile, keyFile, caFile)
}

func startAzurite(t testing.TB, certFile, keyFile, caFile string) *Azurite {
	t.Helper()
	bin := Tool(t, "azurite-blob")
	scheme := "http"
	if certFile != "" {
		scheme = "https"
	}
	client := http.DefaultClient
	if caFile != "" {
		client = trustingClient(t, caFile)
	}
	ports := startOnFreePorts(t, "azurite", 1, client, func(ports []int) (*Process, string) {
		args := []string{
			"--blobHost", "127.0.0.1",
			"--blobPort", strconv.Itoa(ports[0]),
			"--location", t.TempDir(),
			// The SDK may speak a newer API version than Azurite knows;
			// the calls a driver makes have not changed between them.
			"--skipApiVersionCheck",
			"--loose",
			"--disableTelemetry",
		}
		if certFile != "" {
			args = append(args, "--cert", certFile, "--key", keyFile)
		}
		return StartProcess(t, bin, args, nil), fmt.Sprintf("%s://127.0.0.1:%d/%s", scheme, ports[0], AzuriteAccount)
	}, answersAsAzurite)
	port := ports[0]
	a := &Azurite{
		ServiceURL: fmt.Sprintf("%s://127.0.0.1:%d/%s", scheme, port, AzuriteAccount),
		Account:    AzuriteAccount,
		Key:        AzuriteKey,
		HTTPClient: client,
	}
	cred, err := service.NewSharedKeyCredential(a.Account, a.Key)
	if err != nil {
		t.Fatalf("testenv: azurite key: %v", err)
	}
	a.Client, err = service.NewClientWithSharedKeyCredential(a.ServiceURL, cred,
		&service.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: a.HTTPClient}})
	if err != nil {
		t.Fatalf("testenv: azurite client: %v", err)
	}
	return a
}

// answersAsAzurite accepts an answer from a server that names itself
// Azurite-Blob (to an unsigned GET, a 4xx).
func answersAsAzurite(res *http.Response) error {
	if s := res.Header.Get("Server"); !strings.HasPrefix(s, "Azurite") {
		return fmt.Errorf("%s answers as %q, not Azurite", res.Request.URL, s)
	}
	return nil
}

// Container creates a fresh container named after the test and returns
// its name.
func (a *Azurite) Container(t testing.TB) string {
	t.Helper()
	name := containerName(t.Name(), a.containers.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.Client.NewContainerClient(name).Create(ctx, nil); err != nil {
		t.Fatalf("testenv: create container %s: %v", name, err)
	}
	return name
}

// ContainerClient returns a client for the named container, signed with
// the account key.
func (a *Azurite) ContainerClient(name string) *container.Client {
	return a.Client.NewContainerClient(name)
}

// trustingClient is an HTTP client that trusts the certificates in caFile.
func trustingClient(t testing.TB, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("testenv: no certificate in %s", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	return &http.Client{Transport: tr}
}

// containerName makes an Azure container name (3–63 of [a-z0-9-], no
// leading, trailing or doubled dash) unique per call.
func containerName(test string, n int64) string {
	var b strings.Builder
	dash := true // no leading dash
	for _, r := range strings.ToLower(test) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	suffix := fmt.Sprintf("-%d", n)
	s := strings.TrimRight(b.String(), "-")
	if len(s) > 63-len(suffix) {
		s = strings.TrimRight(s[:63-len(suffix)], "-")
	}
	if s == "" {
		s = "c"
	}
	return s + suffix
}
