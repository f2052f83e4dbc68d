package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/notifications"
)

func TestSetupNotificationsDeliversToEnabledEndpoints(t *testing.T) {
	got := make(chan notifications.Event, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var env notifications.Envelope
		if err := json.Unmarshal(b, &env); err != nil || r.Header.Get("X-Token") != "t" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for _, ev := range env.Events {
			got <- ev
		}
	}))
	defer srv.Close()
	spool := t.TempDir()
	cfg, err := config.Parse("config.yml", []byte(`version: 0.1
storage: inmemory
http:
  addr: 127.0.0.1:5123
notifications:
  spool: `+spool+`
  endpoints:
    - name: off
      disabled: true
      url: http://127.0.0.1:1/
    - name: on
      url: `+srv.URL+`
      headers: {X-Token: [t]}
      ignore: {actions: [pull]}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	sink, closeFn, err := setupNotifications(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn(context.Background())
	if err := sink.Publish(context.Background(), notifications.Event{ID: "pull", Action: "pull"}, notifications.Event{ID: "push", Action: "push"}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got:
		if ev.ID != "push" || ev.Source.InstanceID == "" || ev.Source.Addr == "" {
			t.Fatalf("event %+v: want the push, with a source", ev)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no event delivered")
	}
	if stats := notificationStats(sink)(); len(stats) != 1 {
		t.Fatalf("stats %v: want the one enabled endpoint", stats)
	}
}

func TestSetupNotificationsWithoutEndpointsIsNil(t *testing.T) {
	cfg, err := config.Parse("config.yml", []byte("version: 0.1\nstorage: inmemory\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	sink, closeFn, err := setupNotifications(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil || sink != nil || closeFn(context.Background()) != nil {
		t.Fatalf("sink %v, err %v: want none", sink, err)
	}
}
