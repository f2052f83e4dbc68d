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
	childPullsEnv = "BERTH_NOTIFICATIONS_CHILD_PULLS"
)

// TestCrashChild is the child: it publishes the push events, saying so on
// stdout after each Publish returns, and then waits to be killed. With
// pulls, each push follows as many pulls, which it does not report: a
// pull is not durable when Publish returns.
func TestCrashChild(t *testing.T) {
	spool := os.Getenv(childSpoolEnv)
	if spool == "" {
		t.Skip("the child process of TestSIGKILLMidQueueLosesNoEvent")
	}
	count, _ := strconv.Atoi(os.Getenv(childCountEnv))
	pulls, _ := strconv.Atoi(os.Getenv(childPullsEnv))
	n, err := New(Config{Spool: spool, Endpoints: []EndpointConfig{{Name: "hook", URL: os.Getenv(childURLEnv), Backoff: time.Millisecond}}}, nil)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := range count {
		for j := range pulls {
			if err := n.Publish(context.Background(), pullEvent(i*pulls+j)); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
		}
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
// spool: every push it said it published arrives, in order, also when
// pulls (which may be lost) were published between them.
func TestSIGKILLMidQueueLosesNoEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	for _, tt := range []struct {
		name  string
		pulls int // before each push
	}{{"pushes", 0}, {"pushes among pulls", 5}} {
		t.Run(tt.name, func(t *testing.T) { crashAndRestart(t, tt.pulls) })
	}
}

func crashAndRestart(t *testing.T, pulls int) {
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
		childSpoolEnv+"="+spool, childURLEnv+"="+first.srv.URL, childCountEnv+"="+strconv.Itoa(events), childPullsEnv+"="+strconv.Itoa(pulls))
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
	all := map[string]bool{}
	for range accepted {
		for _, ev := range first.next(t).env.Events {
			all[ev.ID] = true
		}
	}

	second := newReceiver(t, nil)
	openNotifier(t, Config{Spool: spool, Endpoints: []EndpointConfig{{Name: "hook", URL: second.srv.URL, Backoff: time.Millisecond}}})
	// Every push not delivered before the kill arrives now, in order.
	var want, after []string
	for _, id := range published {
		if !all[id] {
			want = append(want, id)
		}
	}
	for len(after) < len(want) {
		for _, ev := range second.next(t).env.Events {
			all[ev.ID] = true
			if ev.Action == ActionPush {
				after = append(after, ev.ID)
			}
		}
	}
	if !slices.Equal(after, want) {
		t.Fatalf("after restart got pushes %v, want %v in order", after, want)
	}
	lost := 0
	for _, id := range published {
		if !all[id] {
			t.Errorf("event %s lost", id)
			lost++
		}
	}
	t.Logf("%d pushes published (%d pulls before each), %d delivered after restart, %d lost", len(published), pulls, len(after), lost)
}
