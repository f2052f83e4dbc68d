package middleware

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/storage/driver"
)

// The defaults Distribution documents for the cloudfront middleware.
const (
	defaultCloudFrontDuration = 20 * time.Minute
	defaultUpdateFrequency    = 12 * time.Hour
	defaultIPRangesURL        = "https://ip-ranges.amazonaws.com/ip-ranges.json"
)

// cloudFront redirects blob GETs to a CloudFront distribution in front of
// the S3 bucket, with URLs signed by the distribution's key pair (a canned
// policy that expires after duration). Clients inside AWS (or the listed
// regions), when ipfilteredby asks for it, get the driver's own presigned
// S3 URL instead, which costs them no CloudFront transfer.
type cloudFront struct {
	next     driver.Redirector
	keyer    driver.ObjectKeyer
	base     string
	key      *rsa.PrivateKey
	keyPair  string
	duration time.Duration
	ips      *awsIPs // nil: every client goes through CloudFront
	log      *slog.Logger
	now      func() time.Time
}

type cloudFrontOptions struct {
	BaseURL         string        `yaml:"baseurl"`
	PrivateKey      string        `yaml:"privatekey"`
	KeyPairID       string        `yaml:"keypairid"`
	Duration        time.Duration `yaml:"duration"`
	IPFilteredBy    string        `yaml:"ipfilteredby"`
	AWSRegion       []string      `yaml:"awsregion"`
	UpdateFrequency time.Duration `yaml:"updatefrequency"`
	// UpdateFrenquency is a misspelling Distribution accepts.
	UpdateFrenquency time.Duration `yaml:"updatefrenquency"`
	IPRangesURL      string        `yaml:"iprangesurl"`
}

func newCloudFront(ctx context.Context, d driver.Driver, next driver.Redirector, opts map[string]any, log *slog.Logger) (driver.Redirector, error) {
	pc, err := parseCloudFront(opts, log)
	if err != nil {
		return nil, err
	}
	cf := pc.cf
	cf.next, cf.log, cf.now = next, log, time.Now
	cf.keyer, _ = driver.Find[driver.ObjectKeyer](d)
	if cf.keyer == nil {
		// As in Distribution: CloudFront fronts an S3 bucket.
		log.Warn("cloudfront needs the s3 driver; blob redirects stay the driver's own")
	}
	switch pc.filter {
	case "aws":
		cf.ips = newAWSIPs(ctx, pc.o.IPRangesURL, pc.o.UpdateFrequency, nil, log)
	case "awsregion":
		cf.ips = newAWSIPs(ctx, pc.o.IPRangesURL, pc.o.UpdateFrequency, pc.o.AWSRegion, log)
	}
	return cf, nil
}

// parsedCloudFront is cloudfront's options checked, its key read, before
// any driver or network is involved.
type parsedCloudFront struct {
	cf     *cloudFront
	o      cloudFrontOptions
	filter string // "", "aws" or "awsregion"
}

// parseCloudFront decodes and checks cloudfront's options and reads its
// private key: everything serve refuses at start that needs no network.
func parseCloudFront(opts map[string]any, log *slog.Logger) (*parsedCloudFront, error) {
	o := cloudFrontOptions{Duration: defaultCloudFrontDuration, UpdateFrequency: defaultUpdateFrequency, IPRangesURL: defaultIPRangesURL}
	if err := decode(opts, &o); err != nil {
		return nil, err
	}
	if o.UpdateFrenquency > 0 {
		log.Warn("cloudfront option updatefrenquency is misspelt; use updatefrequency")
		o.UpdateFrequency = o.UpdateFrenquency
	}
	var missing []string
	for _, r := range []struct{ key, v string }{{"baseurl", o.BaseURL}, {"privatekey", o.PrivateKey}, {"keypairid", o.KeyPairID}} {
		if r.v == "" {
			missing = append(missing, "options."+r.key)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: required", strings.Join(missing, ", "))
	}
	base := o.BaseURL
	if !strings.Contains(base, "://") {
		base = "https://" + base
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	if u, err := url.Parse(base); err != nil || u.Host == "" {
		return nil, fmt.Errorf("options.baseurl: expected a URL such as https://d111111abcdef8.cloudfront.net, got %q", o.BaseURL)
	}
	if o.Duration <= 0 || o.UpdateFrequency <= 0 {
		return nil, errors.New("options.duration and options.updatefrequency: must be positive")
	}
	key, err := readRSAKey(o.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("options.privatekey: %w", err)
	}
	pc := &parsedCloudFront{cf: &cloudFront{base: base, key: key, keyPair: o.KeyPairID, duration: o.Duration}, o: o}
	switch f := strings.ToLower(strings.TrimSpace(o.IPFilteredBy)); f {
	case "", "none":
	case "aws":
		pc.filter = f
	case "awsregion":
		if len(o.AWSRegion) == 0 {
			return nil, errors.New("options.awsregion: required with ipfilteredby awsregion (a comma-separated list such as us-east-1,eu-west-1)")
		}
		pc.filter = f
	default:
		return nil, fmt.Errorf("options.ipfilteredby: %q is not one of none, aws, awsregion", o.IPFilteredBy)
	}
	return pc, nil
}

// readRSAKey reads a PEM RSA private key, PKCS #1 (what CloudFront hands
// out) or PKCS #8.
func readRSAKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s holds no PEM block", path)
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: not an RSA private key: %w", path, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: a %T, not an RSA private key", path, k)
	}
	return rk, nil
}

func (cf *cloudFront) RedirectURL(r *http.Request, p string) (string, error) {
	if cf.keyer == nil || (cf.ips != nil && cf.ips.contains(clientIP(r))) {
		if cf.next == nil {
			return "", nil
		}
		return cf.next.RedirectURL(r, p)
	}
	return cf.sign(cf.base+cf.keyer.ObjectKey(p), cf.now().Add(cf.duration))
}

// sign makes a CloudFront signed URL with a canned policy: the resource
// and its expiry, signed with RSA-SHA1 and base64-encoded with the three
// characters CloudFront swaps for URL-safe ones.
func (cf *cloudFront) sign(resource string, expires time.Time) (string, error) {
	exp := strconv.FormatInt(expires.Unix(), 10)
	policy := `{"Statement":[{"Resource":"` + resource + `","Condition":{"DateLessThan":{"AWS:EpochTime":` + exp + `}}}]}`
	sum := sha1.Sum([]byte(policy))
	sig, err := rsa.SignPKCS1v15(nil, cf.key, crypto.SHA1, sum[:])
	if err != nil {
		return "", fmt.Errorf("cloudfront: signing: %w", err)
	}
	u, err := url.Parse(resource)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("Expires", exp)
	q.Set("Signature", cloudFrontBase64(sig))
	q.Set("Key-Pair-Id", cf.keyPair)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func cloudFrontBase64(b []byte) string {
	return strings.NewReplacer("+", "-", "=", "_", "/", "~").Replace(base64.StdEncoding.EncodeToString(b))
}
