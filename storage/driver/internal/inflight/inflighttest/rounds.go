package inflighttest

import (
	"testing"

	"github.com/berth-registry/berth/storage/driver"
)

// Rounds is a write in rounds, as an upload's requests make one: round i
// announces Expect[i] (0 for no hint) and writes the data up to Cuts[i];
// the last round commits.
type Rounds struct {
	Name   string
	Expect []int64
	Cuts   []int
}

const mib = 1 << 20

// HintsThatLie are writes whose rounds announce fewer or more bytes than
// they write, or follow a round without a hint: a writer that plans from
// a hint must store the bytes written all the same.
func HintsThatLie() []Rounds {
	return []Rounds{
		{"fewer", []int64{16 * mib, 16 * mib}, []int{8 * mib, 11*mib + 3}},
		{"more", []int64{16 * mib, 12 * mib}, []int{31*mib + 5, 70 * mib}},
		{"after a round without a plan", []int64{0, 16 * mib, 40 * mib}, []int{3 * mib, 19 * mib, 45*mib + 1}},
	}
}

// WriteRounds writes data in the rounds r: each opens a writer with open
// (resuming after the first round), checks that it resumed after the
// rounds before, announces its bytes, writes them with write and closes
// the writer; the last round commits. The caller reads back what was
// stored.
func WriteRounds(t *testing.T, r Rounds, open func(resume bool) driver.FileWriter, write func(w driver.FileWriter, b []byte), data []byte) {
	t.Helper()
	expect, cuts := r.Expect, r.Cuts
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
