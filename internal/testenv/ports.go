package testenv

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// startOnFreePorts starts a server on n ports that were free a moment ago
// and waits until it is the one answering there. A server another test
// started in between may hold a port by the time this one binds it (seen
// in CI: Azurite could not bind, and a Berth on its port answered the
// test's requests), so readiness is ours, an answer only the server being
// started gives, checked with a client that gives up on a silent port; a
// port lost that way is given up for others, three times at most. start
// runs the server on ports and returns the process and the URL ours is
// checked at.
func startOnFreePorts(t testing.TB, name string, n int, client *http.Client, start func(ports []int) (*Process, string),
	ours func(*http.Response) error) []int {
	t.Helper()
	check := *client
	check.Timeout = 5 * time.Second
	for attempt := 1; ; attempt++ {
		ports := FreePorts(t, n)
		p, url := start(ports)
		err := poll(60*time.Second, p.Done(), func() error {
			res, err := check.Get(url)
			if err != nil {
				return err
			}
			res.Body.Close()
			return ours(res)
		})
		if err == nil {
			return ports
		}
		p.Stop()
		if attempt == 3 {
			t.Fatalf("testenv: %s not answering: %v\nlog:\n%s", name, err, p.Log())
		}
		t.Logf("testenv: %s on ports %v: %v; trying others", name, ports, err)
	}
}

// answersOK accepts a 200, which the readiness URLs of MinIO and
// fake-gcs-server give and another server (a Berth: 404) does not.
func answersOK(res *http.Response) error {
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answers %s", res.Request.URL, res.Status)
	}
	return nil
}
