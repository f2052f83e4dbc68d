package testenv

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRepoRootHoldsBerthModule(t *testing.T) {
	root := RepoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !isBerthModule(string(b)) {
		t.Errorf("%s/go.mod is not module %s", root, modulePath)
	}
}

func TestToolFindsCommandsOnPath(t *testing.T) {
	if p := Tool(t, "sh"); !filepath.IsAbs(p) {
		t.Errorf("Tool(sh) = %q, want an absolute path", p)
	}
}

func TestFreePortsAreDistinct(t *testing.T) {
	seen := map[int]bool{}
	for _, p := range FreePorts(t, 64) {
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}

// TestFreePortNeverRepeats: separate calls never hand out one port twice.
// Seen failing without the record of ports handed out: a repeat within
// 130 calls, in each of five runs.
func TestFreePortNeverRepeats(t *testing.T) {
	seen := map[int]int{}
	for i := range 1000 {
		p := FreePort(t)
		if j, ok := seen[p]; ok {
			t.Fatalf("port %d handed out at call %d and again at %d", p, j, i)
		}
		seen[p] = i
	}
}

func TestFreePortCanBeListenedOn(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(FreePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

func TestWaitHTTPCountsUnauthorizedAsUp(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	WaitHTTP(t, srv.URL+"/v2/", 5*time.Second)
}

func TestHTTPUpRejectsServerErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	if err := httpUp(srv.URL)(); err == nil {
		t.Error("a 503 counted as up")
	}
}

func TestPollStopsWhenProcessExits(t *testing.T) {
	exited := make(chan struct{})
	close(exited)
	err := poll(time.Hour, exited, func() error { return errors.New("not yet") })
	var e errExited
	if !errors.As(err, &e) {
		t.Fatalf("poll = %v, want errExited", err)
	}
}

func TestStartProcessLogsOutput(t *testing.T) {
	p := StartProcess(t, "sh", []string{"-c", "echo out; echo err >&2"}, []string{"GREETING=hi"})
	<-p.Done()
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	if got := p.Log(); got != "out\nerr\n" {
		t.Errorf("log = %q, want %q", got, "out\nerr\n")
	}
}

func TestStartProcessPassesEnv(t *testing.T) {
	p := StartProcess(t, "sh", []string{"-c", "echo $GREETING"}, []string{"GREETING=hi"})
	<-p.Done()
	if got := strings.TrimSpace(p.Log()); got != "hi" {
		t.Errorf("log = %q, want hi", got)
	}
}

func TestStartProcessStopsProcessGroupAtCleanup(t *testing.T) {
	var parent, child int
	t.Run("start", func(t *testing.T) {
		p := StartProcess(t, "sh", []string{"-c", "sleep 300 & echo $! >child.pid; wait"}, nil)
		parent = p.Cmd.Process.Pid
		pidFile := filepath.Join(filepath.Dir(p.LogPath), "child.pid")
		if err := poll(10*time.Second, p.Done(), func() error {
			b, err := os.ReadFile(pidFile)
			if err != nil {
				return err
			}
			child, err = strconv.Atoi(strings.TrimSpace(string(b)))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	})
	for _, pid := range []int{parent, child} {
		// The parent was reaped by Wait; the child, reparented, may linger
		// as a zombie for an instant, so give init a moment.
		if err := poll(5*time.Second, nil, func() error { return alive(pid) }); err != nil {
			t.Errorf("process %d still running after cleanup", pid)
		}
	}
}

// alive returns nil once pid no longer runs (gone or a zombie).
func alive(pid int) error {
	if err := syscall.Kill(pid, 0); err != nil {
		return nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	if f := strings.Fields(string(b)); len(f) > 2 && f[2] == "Z" {
		return nil
	}
	return errors.New("running")
}
