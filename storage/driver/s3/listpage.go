package s3

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/berth-registry/berth/storage/driver"
)

var _ driver.PageLister = (*Driver)(nil)

// ListPage implements driver.PageLister: the listing starts at the key
// after the name (StartAfter) and stops once the page is known, so a page
// of a directory of a hundred thousand tags costs one or two requests,
// sent together, not a hundred.
//
// S3 orders keys bytewise, so a name that extends after with "-" or "."
// ("v1-rc/…") has keys before after's own ("v1/…"), though it sorts
// after it as a name (driver.KeyPageComplete). A page after a name is
// therefore two listings sent at once: the names from past after's own
// keys, and the names that extend after (prefix after, which MinIO
// answers without reading the rest of the directory). One listing from
// after would give after's own folder first, so that a page of 1 000
// names took a second listing, sent once the first had answered: on
// MinIO each listing from StartAfter reads the whole directory (0.3–1 s
// at 100 000 tags) whatever it returns.
//
// A listing that does not settle the page goes on from StartAfter at the
// greatest key listed so far, not with the continuation token. MinIO
// answers the first continuation token of a listing by walking the rest
// of the directory into a cached listing it writes to its drives, and
// goes on walking after it has answered: with 20 000 tags, ten pages of
// 1 001 cost MinIO 7–8 s of CPU that way and 2.9–3.1 s from StartAfter.
// (The later tokens, which read the cached listing, would be cheaper, but
// they answer from it as it was: a tag added since is not listed.)
func (d *Driver) ListPage(ctx context.Context, dir, after string, n int) ([]string, bool, error) {
	p := &keyPage{prefix: d.dirPrefix(dir), after: after, n: n}
	size := min(n+1, driver.MaxListKeys)
	var token *string
	if after != "" {
		if err := p.around(ctx, d, size); err != nil {
			return nil, false, mapErr("list", dir, err)
		}
	} else {
		out, err := d.listLevel(ctx, p.prefix, "", nil, size)
		if err != nil {
			return nil, false, mapErr("list", dir, err)
		}
		p.take(out, "")
	}
	for !p.settled() {
		seen := p.last
		size = driver.NextListSize(n+1, len(p.names), size)
		out, err := d.listLevel(ctx, p.prefix, p.last, token, size)
		if err != nil {
			return nil, false, mapErr("list", dir, err)
		}
		p.take(out, "")
		token = nil
		if p.last == seen && p.more {
			// Nothing new (only a repeated common prefix): the token
			// moves on.
			token = out.NextContinuationToken
		}
	}
	return driver.KeyPage(ctx, d, dir, after, p.names, n, p.more)
}

// around sends the first two listings of a page after p.after at once:
// from past after's own keys (StartAfter "<after>/"), and the names that
// extend after (prefix "<after>"), of which only the keys before after's
// own count. When the second does not reach after's own keys (more than
// it lists extend after), the page goes on from where it stopped.
func (p *keyPage) around(ctx context.Context, d *Driver, size int) error {
	own := p.prefix + p.after + "/"
	var past, ext *s3.ListObjectsV2Output
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		past, err = d.listLevel(gctx, p.prefix, own, nil, size)
		return err
	})
	g.Go(func() (err error) {
		ext, err = d.listLevel(gctx, p.prefix+p.after, p.prefix+p.after, nil, size)
		return err
	})
	if err := g.Wait(); err != nil {
		return err
	}
	p.last = p.prefix + p.after
	p.take(ext, own)
	if p.more {
		return nil
	}
	// Every key between after and its own keys is listed; past lists on
	// from after its own keys.
	p.last = own
	p.take(past, "")
	return nil
}

// keyPage is what the listings of one page have found so far.
type keyPage struct {
	prefix, after string
	n             int
	names         []string // the valid names after after, of the keys listed
	// last is the greatest key listed: every key from after's up to it
	// has been listed.
	last string
	more bool // keys follow last
}

// take adds a listing's keys and common prefixes, those below below
// when it is not "" (more is then whether the listing stopped before
// below).
func (p *keyPage) take(out *s3.ListObjectsV2Output, below string) {
	seen, greatest := p.last, ""
	add := func(key string, dirMark bool) {
		greatest = max(greatest, key)
		// A listing from StartAfter at a common prefix may give that
		// prefix again (its keys sort after it); MinIO does not.
		if key <= seen || (below != "" && key >= below) {
			return
		}
		p.last = max(p.last, key)
		n := strings.TrimPrefix(key, p.prefix)
		if dirMark {
			n = strings.TrimSuffix(n, "/")
		}
		if validName(n) && n > p.after {
			p.names = append(p.names, n)
		}
	}
	for _, o := range out.Contents {
		add(aws.ToString(o.Key), false)
	}
	for _, cp := range out.CommonPrefixes {
		add(aws.ToString(cp.Prefix), true)
	}
	p.more = aws.ToBool(out.IsTruncated) && (below == "" || greatest < below)
}

// settled tells whether the page is known: its n names, and whether more
// follow. Past last, a key that is not after's own names a child after
// after, unless it is a shorter name of after's ("v1" after "v1-rc"),
// whose keys come after after's; while one of those may still come, the
// listing goes on.
func (p *keyPage) settled() bool {
	if !p.more || driver.KeyPageComplete(p.names, p.n+1, p.prefix, p.after, p.last) {
		return true
	}
	if !driver.KeyPageComplete(p.names, p.n, p.prefix, p.after, p.last) {
		return false
	}
	for i := 1; i < len(p.after); i++ {
		if p.after[i] < '/' && p.prefix+p.after[:i]+"/" > p.last {
			return false
		}
	}
	return true
}

// listLevel lists up to size keys and common prefixes one level below
// prefix, after startAfter ("": from the first) or from token.
func (d *Driver) listLevel(ctx context.Context, prefix, startAfter string, token *string, size int) (*s3.ListObjectsV2Output, error) {
	in := &s3.ListObjectsV2Input{
		Bucket: d.bucket, Prefix: aws.String(prefix), Delimiter: aws.String("/"),
		MaxKeys: aws.Int32(int32(size)), ContinuationToken: token,
	}
	if startAfter != "" {
		in.StartAfter = aws.String(startAfter)
	}
	return d.listObjects(ctx, in)
}
