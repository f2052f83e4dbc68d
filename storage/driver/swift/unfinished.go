package swift

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/ncw/swift/v2"
)

// Unfinished implements driver.UploadLister from the state objects below
// dir, with the start times they record.
func (d *Driver) Unfinished(ctx context.Context, dir string) (map[string]time.Time, error) {
	prefix := d.cfg.prefix + "uploads/"
	if dir != "/" {
		prefix = d.stateObject(dir) + "/"
	}
	names, err := d.conn.ObjectNamesAll(ctx, d.cfg.Container, &swift.ObjectsOpts{Prefix: prefix})
	if err != nil {
		return nil, mapErr("unfinished", dir, err)
	}
	out := map[string]time.Time{}
	for _, n := range names {
		p, ok := relPath(dir, prefix, n)
		if !ok {
			continue
		}
		s, err := d.readState(ctx, n)
		if isNotFound(err) {
			continue // committed or cancelled meanwhile
		}
		if err != nil {
			return nil, mapErr("unfinished", dir, err)
		}
		out[p] = s.started
	}
	return out, nil
}

// RedirectURL implements driver.Redirector with a temporary URL for GET,
// when secretkey is set. The key is put on the container (with
// tempurlcontainerkey) or the account the first time, unless it is there.
func (d *Driver) RedirectURL(r *http.Request, path string) (string, error) {
	if d.cfg.SecretKey == "" {
		return "", nil
	}
	if len(d.cfg.TempURLMethods) > 0 && !slices.Contains(d.cfg.TempURLMethods, http.MethodGet) {
		return "", nil
	}
	if err := d.ensureKey(r.Context()); err != nil {
		return "", pathErr("redirect", path, err)
	}
	u := d.conn.ObjectTempUrl(d.cfg.Container, d.object(path), d.cfg.SecretKey, http.MethodGet, time.Now().Add(redirectExpiry))
	if d.cfg.AccessKey != "" {
		// HP Helion's form of the signature: tenant:accesskey:signature.
		pu, err := url.Parse(u)
		if err != nil {
			return "", pathErr("redirect", path, err)
		}
		q := pu.Query()
		q.Set("temp_url_sig", d.conn.TenantId+":"+d.cfg.AccessKey+":"+q.Get("temp_url_sig"))
		pu.RawQuery = q.Encode()
		u = pu.String()
	}
	return u, nil
}

func (d *Driver) ensureKey(ctx context.Context) error {
	d.keyMu.Lock()
	defer d.keyMu.Unlock()
	if d.keySet {
		return nil
	}
	m := swift.Metadata{"temp-url-key": d.cfg.SecretKey}
	if d.cfg.TempURLContainerKey {
		_, h, err := d.conn.Container(alone(ctx), d.cfg.Container)
		if err != nil {
			return err
		}
		if h["X-Container-Meta-Temp-Url-Key"] != d.cfg.SecretKey {
			if err := d.conn.ContainerUpdate(ctx, d.cfg.Container, m.ContainerHeaders()); err != nil {
				return err
			}
		}
	} else {
		_, h, err := d.conn.Account(alone(ctx))
		if err != nil {
			return err
		}
		if h["X-Account-Meta-Temp-Url-Key"] != d.cfg.SecretKey {
			if err := d.conn.AccountUpdate(ctx, m.AccountHeaders()); err != nil {
				return err
			}
		}
	}
	d.keySet = true
	return nil
}
