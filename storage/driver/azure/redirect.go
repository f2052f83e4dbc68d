package azure

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
)

// clockSkew backdates a SAS's start so a server whose clock is a little
// behind ours accepts it at once.
const clockSkew = 5 * time.Minute

// RedirectURL implements driver.Redirector with a read-only SAS URL valid
// for redirectexpiry. With an account key the SAS is signed locally; with
// Entra ID credentials it is signed with a user delegation key, fetched
// once and reused while it outlives the URLs it signs. A connection string
// without a key can sign nothing, and the registry serves the blob itself.
func (d *Driver) RedirectURL(r *http.Request, path string) (string, error) {
	now := time.Now().UTC()
	expiry := now.Add(d.cfg.RedirectExpiry)
	bc := d.c.NewBlobClient(d.name(path))
	if d.svc == nil {
		u, err := bc.GetSASURL(sas.BlobPermissions{Read: true}, expiry, nil)
		if errors.Is(err, bloberror.MissingSharedKeyCredential) {
			return "", nil
		}
		if err != nil {
			return "", pathErr("redirect", path, err)
		}
		return u, nil
	}
	key, err := d.udk.get(r.Context(), d.svc, expiry)
	if err != nil {
		return "", pathErr("redirect", path, err)
	}
	parts, err := sas.ParseURL(bc.URL())
	if err != nil {
		return "", pathErr("redirect", path, err)
	}
	qp, err := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPS,
		StartTime:     now.Add(-clockSkew),
		ExpiryTime:    expiry,
		Permissions:   (&sas.BlobPermissions{Read: true}).String(),
		ContainerName: parts.ContainerName,
		BlobName:      parts.BlobName,
	}.SignWithUserDelegation(key)
	if err != nil {
		return "", pathErr("redirect", path, err)
	}
	parts.SAS = qp
	return parts.String(), nil
}

// delegationKey caches a user delegation key. Azure grants one for at most
// seven days; it is renewed when it would expire before a URL it signs.
type delegationKey struct {
	mu      sync.Mutex
	cred    *service.UserDelegationCredential
	expires time.Time
}

const delegationKeyLife = 7*24*time.Hour - time.Hour

func (k *delegationKey) get(ctx context.Context, svc *service.Client, until time.Time) (*service.UserDelegationCredential, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cred != nil && k.expires.After(until) {
		return k.cred, nil
	}
	now := time.Now().UTC()
	start, expires := now.Add(-clockSkew).Format(sas.TimeFormat), now.Add(delegationKeyLife)
	exp := expires.Format(sas.TimeFormat)
	cred, err := svc.GetUserDelegationCredential(ctx, service.KeyInfo{Start: &start, Expiry: &exp}, nil)
	if err != nil {
		return nil, err
	}
	k.cred, k.expires = cred, expires
	return cred, nil
}
