package inflighttest

import (
	"testing"

	"github.com/berth-registry/berth/storage/driver"
)

// WriteRounds writes data as an upload's requests do, in rounds: round i
// opens a writer with open (resuming after the first round), checks that
// it resumed after the rounds before, announces expect[i] (0 for no
// hint), writes data up to cuts[i] with write and closes the writer; the
// last round commits. The caller reads back what was stored.
func WriteRounds(t *testing.T, open func(resume bool) driver.FileWriter, write func(w driver.FileWriter, b []byte), expect []int64, cuts []int, data []byte) {
	t.Helper()
	prev := 0
	for i, cut := range cuts {
		w := open(i > 0)
		if got := w.Size(); got != int64(prev) {
			t.Fatalf("round %d: resumed Size = %d, want %d", i, got, prev)
		}
		driver.Expect(w, expect[i])
		write(w, data[prev:cut])
		if i == len(cuts)-1 {
			if err := w.Commit(t.Context()); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			return
		}
		if err := w.Close(); err != nil {
			t.Fatalf("round %d: Close: %v", i, err)
		}
		prev = cut
	}
}
