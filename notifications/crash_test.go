package notifications

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The crash test re-runs this test binary as a child process that
// publishes events, then kills it with SIGKILL.
const (
	childSpoolEnv = "BERTH_NOTIFICATIONS_CHILD_SPOOL"
	childURLEnv   = "BERTH_NOTIFICATIONS_CHILD_URL"
	childCountEnv = "BERTH_NOTIFICATIONS_CHILD_COUNT"
)

// TestCrashChild is the child: it publishes the events, saying so on
// stdout after each Publish returns, and then waits to be killed.
func TestCrashChild(t *testing.T) {
	spool := os.Getenv(childSpoolEnv)
	if spool == "" {
		t.Skip("the child process of TestSIGKILLMidQueueLosesNoEvent")
	}
	count, _ := strconv.Atoi(os.Getenv(childCountEnv))
	n, err := New(Config{Spool: spool, Endpoints: []EndpointConfig{{Name: "hook", URL: os.Getenv(childURLEnv), Backoff: time.Millisecond}}}, nil)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := range count {
		if err := n.Publish(context.Background(), pushEvent(i)); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("published", pushEvent(i).ID)
	}
	fmt.Println("done")
	select {}
}

// TestSIGKILLMidQueueLosesNoEvent kills a process with a few events
// delivered, one in flight and the rest spooled, then starts again on its
// spool: every event it said it published arrives.
func TestSIGKILLMidQueueLosesNoEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	const events, accepted = 40, 3
	release := make(chan struct{})
	first := newReceiver(t, func(n int, _ http.ResponseWriter, _ *http.Request) int {
		if n > accepted {
			<-release // the child dies with this request in flight
		}
		return http.StatusOK
	})
	defer close(release)

	spool := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(),
		childSpoolEnv+"="+spool, childURLEnv+"="+first.srv.URL, childCountEnv+"="+strconv.Itoa(events))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	var published []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if id, ok := strings.CutPrefix(line, "published "); ok {
			published = append(published, id)
			continue
		}
		if line == "done" {
			break
		}
		t.Fatalf("child: %s", line)
	}
	if len(published) != events {
		t.Fatalf("child published %d events, want %d", len(published), events)
	}
	for range accepted + 1 {
		<-first.got // three accepted, the fourth held open
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	var delivered []string
	for range accepted {
		for _, ev := range first.next(t).env.Events {
			delivered = append(delivered, ev.ID)
		}
	}

	second := newReceiver(t, nil)
	openNotifier(t, Config{Spool: spool, Endpoints: []EndpointConfig{{Name: "hook", URL: second.srv.URL, Backoff: time.Millisecond}}})
	after := second.nextIDs(t, events-accepted)
	if !slices.Equal(after, published[accepted:]) {
		t.Fatalf("after restart got %v, want %v in order", after, published[accepted:])
	}
	all := map[string]bool{}
	for _, id := range append(delivered, after...) {
		all[id] = true
	}
	for _, id := range published {
		if !all[id] {
			t.Errorf("event %s lost", id)
		}
	}
	t.Logf("%d events published, %d delivered before SIGKILL, %d after restart, %d lost", len(published), len(delivered), len(after), len(published)-len(all))
}
