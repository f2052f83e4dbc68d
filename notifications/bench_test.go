package notifications

import (
	"context"
	"testing"
)

// BenchmarkPublish measures what an event costs the request that causes
// it: for a push, encoding it and waiting for the batch that holds it to
// be written durably (fsync of the file and of the spool directory) on
// this machine's disk; for a pull, encoding it and adding it to the
// batch.
func BenchmarkPublish(b *testing.B) {
	for _, bc := range []struct {
		name      string
		endpoints int
		parallel  bool
		pull      bool
	}{
		{"1endpoint", 1, false, false}, {"1endpoint-parallel", 1, true, false}, {"2endpoints", 2, false, false},
		{"pull-1endpoint-parallel", 1, true, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var cfg Config
			for i := range bc.endpoints {
				rc := newReceiverB(b)
				cfg.Endpoints = append(cfg.Endpoints, EndpointConfig{Name: string(rune('a' + i)), URL: rc, Spool: b.TempDir()})
			}
			n, err := New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer n.Close(context.Background())
			ev := pushEvent(1)
			if bc.pull {
				ev = pullEvent(1)
			}
			ev.ID = ""
			ctx := context.Background()
			b.ResetTimer()
			if bc.parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := n.Publish(ctx, ev); err != nil {
							b.Error(err)
						}
					}
				})
				return
			}
			for b.Loop() {
				if err := n.Publish(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
