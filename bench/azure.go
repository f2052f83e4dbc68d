package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// With -backend azure each server gets an Azurite of its own, behind the
// run's shaped link like MinIO with -backend s3. Both drivers take the
// same section: Distribution's azure driver has serviceurl too, which
// reaches Azurite on loopback over plain http. Distribution needs
// credentials.type (it panics without one), though it signs with the
// account key whenever one is given.

// Azurite's built-in account: the name and key Microsoft documents for the
// storage emulator, the same in every installation.
const (
	azuriteAccount   = "devstoreaccount1"
	azuriteKey       = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
	azuriteContainer = "registry"
	// azuriteRoot is the rootdirectory of both servers. Not the container's
	// root: Distribution's health check then stats the blob named "/",
	// which Azurite refuses with a 400, and after three checks
	// Distribution answers every request 503.
	azuriteRoot = "bench"
)

// Distribution's azure driver has no Walk of its own: its tag list and
// catalog walk with a Stat (two requests) per entry, about 70 ms each
// through the shaped link, and a hundred thousand tags would take two
// hours a round. On Azure S5 and S6 are therefore smaller by default.
const (
	azureTags  = 10000
	azureRepos = 1000
)

// onAzure returns sz with S5 and S6 at most the Azure defaults; S5's
// count stays as given when tagsGiven (-tags).
func (sz sizes) onAzure(tagsGiven bool) sizes {
	if !tagsGiven {
		sz.cloudTags = min(sz.cloudTags, azureTags)
	}
	sz.repos = min(sz.repos, azureRepos)
	return sz
}

// newAzureStorage starts an Azurite in dir with an empty container, behind
// the shaped link unless WAN=off.
func (h *harness) newAzureStorage(ctx context.Context, dir string) (*storageRoot, error) {
	a, err := startAzurite(ctx, h.azurite, dir)
	if err != nil {
		return nil, err
	}
	endpoint, unshape, err := h.link(ctx, filepath.Base(dir), a.endpoint)
	if err != nil {
		a.stop()
		return nil, err
	}
	shaped, err := shapedContainer(endpoint)
	if err != nil {
		unshape()
		a.stop()
		return nil, err
	}
	return &storageRoot{
		yaml: fmt.Sprintf(`  azure:
    accountname: %s
    accountkey: %s
    container: %s
    serviceurl: %s/%s
    rootdirectory: /%s
    credentials:
      type: shared_key`, azuriteAccount, azuriteKey, azuriteContainer, endpoint, azuriteAccount, azuriteRoot),
		cleanup:     func() { unshape(); a.stop() },
		put:         a.put,
		exists:      a.exists,
		shapedAzure: shaped,
	}, nil
}

type azurite struct {
	*proc
	endpoint string // http://127.0.0.1:PORT, direct, unshaped
	client   *container.Client
}

func startAzurite(ctx context.Context, bin, dir string) (*azurite, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "azurite")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	// The SDKs of both servers speak API versions newer than some Azurite
	// releases know; the calls they make have not changed between them.
	cmd := exec.Command(bin, "--blobHost", host, "--blobPort", port, "--location", data,
		"--skipApiVersionCheck", "--loose", "--disableTelemetry")
	p, err := startProc("azurite", cmd, filepath.Join(dir, "azurite.log"))
	if err != nil {
		return nil, err
	}
	a := &azurite{proc: p, endpoint: "http://" + addr}
	// An unsigned GET gets a 4xx once it listens.
	if err := waitHTTP(ctx, a.endpoint+"/"+azuriteAccount, a.done, 60*time.Second); err != nil {
		a.stop()
		return nil, fmt.Errorf("azurite: %w\n%s", err, tail(filepath.Join(dir, "azurite.log")))
	}
	cred, err := container.NewSharedKeyCredential(azuriteAccount, azuriteKey)
	if err != nil {
		a.stop()
		return nil, err
	}
	a.client, err = container.NewClientWithSharedKeyCredential(a.endpoint+"/"+azuriteAccount+"/"+azuriteContainer, cred, nil)
	if err != nil {
		a.stop()
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := a.client.Create(cctx, nil); err != nil {
		a.stop()
		return nil, fmt.Errorf("azurite: create container: %w", err)
	}
	return a, nil
}

// put stores one blob directly, for the setups that lay out content in
// bulk; key is below the servers' rootdirectory.
func (a *azurite) put(ctx context.Context, key string, body []byte) error {
	_, err := a.client.NewBlockBlobClient(azuriteRoot+"/"+key).Upload(ctx, streaming.NopCloser(bytes.NewReader(body)), nil)
	return err
}

// exists tells whether one blob is there, directly.
func (a *azurite) exists(ctx context.Context, key string) (bool, error) {
	_, err := a.client.NewBlobClient(azuriteRoot+"/"+key).GetProperties(ctx, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return false, nil
	}
	return err == nil, err
}
