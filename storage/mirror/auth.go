package mirror

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// minTokenLife is how long a token without expires_in is used, the
// distribution token spec's default.
const minTokenLife = 60 * time.Second

// fetchToken asks the realm of a bearer challenge for a token for scope,
// with the configured credentials when there are any. The realm is the
// only host besides the upstream that sees the credentials, and the token
// goes back only to the upstream (authorize, checkRedirect).
func (u *upstream) fetchToken(ctx context.Context, params map[string]string, scope string) (token, error) {
	realm, err := url.Parse(params["realm"])
	if err != nil || (realm.Scheme != "https" && realm.Scheme != "http") || realm.Host == "" {
		return token{}, u.denied(fmt.Sprintf("bearer challenge with an unusable realm %q", params["realm"]))
	}
	if u.base.Scheme == "https" && realm.Scheme != "https" {
		// Credentials meant for a TLS upstream never travel in clear.
		return token{}, u.denied(fmt.Sprintf("refusing plain-http token realm %s of a https upstream", realm.Redacted()))
	}
	q := realm.Query()
	if s := params["service"]; s != "" {
		q.Set("service", s)
	}
	if s := params["scope"]; s != "" {
		scope = s
	}
	if scope != "" {
		q.Set("scope", scope)
	}
	realm.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return token{}, u.fail("token request", err)
	}
	if u.creds != nil {
		user, pass, err := u.creds.Get(ctx)
		if err != nil {
			return token{}, u.fail("credentials", err)
		}
		if user != "" || pass != "" {
			req.SetBasicAuth(user, pass)
		}
	}
	// Not u.client: its redirect rule is about the upstream's host.
	resp, err := u.client.Transport.RoundTrip(req)
	if err != nil {
		return token{}, u.fail("token from "+realm.Host, err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return token{}, u.denied(fmt.Sprintf("token service %s answered %s", realm.Host, resp.Status))
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxUpstreamDoc)).Decode(&body); err != nil {
		return token{}, u.denied(fmt.Sprintf("token service %s: unreadable answer: %v", realm.Host, err))
	}
	t := token{value: body.Token}
	if t.value == "" {
		t.value = body.AccessToken
	}
	if t.value == "" {
		return token{}, u.denied(fmt.Sprintf("token service %s gave no token", realm.Host))
	}
	life := time.Duration(body.ExpiresIn) * time.Second
	if life < minTokenLife {
		life = minTokenLife
	}
	// Renewed a little early, so a request never carries one that
	// expires on the way.
	t.expires = time.Now().Add(life - life/10)
	return t, nil
}

// parseChallenge reads one WWW-Authenticate value: its scheme, lower-case,
// and its auth-params (realm="…",service="…").
func parseChallenge(h string) (string, map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	params := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		key = strings.ToLower(strings.TrimSpace(key))
		var val string
		if strings.HasPrefix(after, `"`) {
			end := 1
			for end < len(after) && after[end] != '"' {
				if after[end] == '\\' {
					end++
				}
				end++
			}
			val = strings.ReplaceAll(after[1:min(end, len(after))], `\"`, `"`)
			after = after[min(end+1, len(after)):]
		} else {
			val, after, _ = strings.Cut(after, ",")
			after = "," + after
		}
		params[key] = val
		rest = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(after), ","))
	}
	return strings.ToLower(scheme), params
}
