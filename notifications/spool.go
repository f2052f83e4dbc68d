package notifications

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// A spool is one endpoint's directory of undelivered events. Events are
// written in batches, one file per batch and class (pulls apart from
// pushes, mounts and deletes, so that dropping pulls never keeps a file
// alive for the sake of another event). A file is written under a
// temporary name, synced, renamed into place and the directory synced:
// after a crash a batch is whole or absent, never torn, and one batch of
// any number of events costs the same fsyncs as one event did.
//
// Each line of a batch file is one event: its sequence number, its
// action, its JSON, a newline. JSON holds no raw newline, so the lines
// split without parsing it. Files of Berth's earlier format, one event per
// file named by its sequence number with the .json extension, are read as
// one-event batches.
//
// Removing a file once each of its events was delivered or dropped needs
// no sync: if the removal is lost in a crash the events are sent again,
// which at-least-once allows.
type spool struct {
	dir  string
	dirf *os.File // kept open to sync the directory after each rename
	lock *os.File
}

// segment is one file of the spool.
type segment struct {
	name string
	// live counts its events neither delivered nor dropped; the file is
	// removed when it reaches zero. Guarded by the endpoint's mutex.
	live int
}

// entry is one spooled event: where its JSON lies in which file.
type entry struct {
	seq    uint64
	action string
	seg    *segment
	off    int64
	size   int   // of the JSON
	disk   int64 // what it takes in the spool, counted against its cap
}

const (
	pullsExt   = ".pulls"
	changesExt = ".changes"
	legacyExt  = ".json" // one event per file, as Berth wrote them before batches
	tmpPrefix  = "tmp-"
	lockName   = "LOCK"
)

// openSpool opens (creating) the spool in dir, takes its lock so that no
// other process delivers the same events, and reads what it holds. It
// returns the entries in sequence order and the number of lines it could
// not read.
func openSpool(dir string) (*spool, []entry, int, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, 0, fmt.Errorf("spool: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("spool: %w", err)
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		return nil, nil, 0, fmt.Errorf("spool %s is in use by another process: %w", dir, err)
	}
	dirf, err := os.Open(dir)
	if err != nil {
		lock.Close()
		return nil, nil, 0, fmt.Errorf("spool: %w", err)
	}
	s := &spool{dir: dir, dirf: dirf, lock: lock}
	entries, bad, err := s.scan()
	if err != nil {
		s.close()
		return nil, nil, 0, err
	}
	return s, entries, bad, nil
}

// scan reads every spooled event and removes what a crash left half
// written.
func (s *spool) scan() ([]entry, int, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, 0, fmt.Errorf("spool: %w", err)
	}
	var entries []entry
	bad := 0
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, tmpPrefix) {
			_ = os.Remove(filepath.Join(s.dir, name))
			continue
		}
		seq, ext, ok := parseName(name)
		if !ok || !de.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, 0, fmt.Errorf("spool: %w", err)
		}
		seg := &segment{name: name}
		var es []entry
		if ext == legacyExt {
			es = []entry{legacyEntry(seq, seg, data)}
		} else {
			es, bad = parseBatch(seg, data, bad)
		}
		if len(es) == 0 {
			_ = os.Remove(filepath.Join(s.dir, name))
			continue
		}
		seg.live = len(es)
		entries = append(entries, es...)
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmpSeq(a.seq, b.seq) })
	return entries, bad, nil
}

// legacyEntry is the event of a file of the one-event-per-file format. Its
// action is read from its JSON; one that cannot be read is kept as a
// change, never dropped as a pull, and discarded when its turn to be sent
// comes.
func legacyEntry(seq uint64, seg *segment, data []byte) entry {
	var ev struct{ Action string }
	_ = json.Unmarshal(data, &ev)
	return entry{seq: seq, action: ev.Action, seg: seg, size: len(data), disk: int64(len(data))}
}

// parseBatch reads the lines of a batch file. A line that does not parse
// (only an operator's edit or a damaged disk makes one) is counted in bad
// and skipped.
func parseBatch(seg *segment, data []byte, bad int) ([]entry, int) {
	var es []entry
	off := 0
	for off < len(data) {
		n := bytes.IndexByte(data[off:], '\n')
		if n < 0 {
			return es, bad + 1
		}
		line := data[off : off+n]
		seqText, rest, ok1 := bytes.Cut(line, []byte{' '})
		action, js, ok2 := bytes.Cut(rest, []byte{' '})
		seq, err := strconv.ParseUint(string(seqText), 10, 64)
		if !ok1 || !ok2 || err != nil || len(js) == 0 {
			bad++
		} else {
			es = append(es, entry{
				seq: seq, action: string(action), seg: seg,
				off: int64(off + n - len(js)), size: len(js), disk: int64(n + 1),
			})
		}
		off += n + 1
	}
	return es, bad
}

// appendLine adds one event to a batch file's contents.
func appendLine(b []byte, seq uint64, action string, js []byte) []byte {
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, ' ')
	b = append(b, action...)
	b = append(b, ' ')
	b = append(b, js...)
	return append(b, '\n')
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// batchName names the batch file whose first event is seq. It is fixed
// width, so a directory listing sorts in sequence order for a human too.
func batchName(seq uint64, pulls bool) string {
	ext := changesExt
	if pulls {
		ext = pullsExt
	}
	return fmt.Sprintf("%020d%s", seq, ext)
}

func parseName(name string) (uint64, string, bool) {
	ext := filepath.Ext(name)
	if ext != pullsExt && ext != changesExt && ext != legacyExt {
		return 0, "", false
	}
	base := strings.TrimSuffix(name, ext)
	if len(base) != 20 {
		return 0, "", false
	}
	seq, err := strconv.ParseUint(base, 10, 64)
	return seq, ext, err == nil
}

// batchFile is one file a flush writes.
type batchFile struct {
	name string
	data []byte
}

// write stores files durably and returns how many fsyncs that took. Either
// every file is in place or, on error, none is.
func (s *spool) write(files []batchFile) (syncs int, err error) {
	tmps := make([]string, 0, len(files))
	defer func() {
		if err == nil {
			return
		}
		for _, t := range tmps {
			_ = os.Remove(t)
		}
	}()
	for _, bf := range files {
		f, err := os.CreateTemp(s.dir, tmpPrefix)
		if err != nil {
			return syncs, fmt.Errorf("spool: %w", err)
		}
		tmps = append(tmps, f.Name())
		_, err = f.Write(bf.data)
		if err == nil {
			err = f.Sync()
			syncs++
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return syncs, fmt.Errorf("spool: %w", err)
		}
	}
	for i, bf := range files {
		if err := os.Rename(tmps[i], filepath.Join(s.dir, bf.name)); err != nil {
			// Take back what was renamed: the caller counts the whole
			// batch as not written.
			for _, done := range files[:i] {
				_ = os.Remove(filepath.Join(s.dir, done.name))
			}
			return syncs, fmt.Errorf("spool: %w", err)
		}
	}
	syncs++
	if err := s.dirf.Sync(); err != nil {
		for _, bf := range files {
			_ = os.Remove(filepath.Join(s.dir, bf.name))
		}
		return syncs, fmt.Errorf("spool: sync %s: %w", s.dir, err)
	}
	return syncs, nil
}

// remove forgets a file whose events were all delivered or dropped; one
// already gone is fine.
func (s *spool) remove(name string) error {
	err := os.Remove(filepath.Join(s.dir, name))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

func (s *spool) close() error {
	err := s.dirf.Close()
	// Closing the file releases the lock.
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	return err
}

// spoolReader reads events for the sender, keeping the file it read last
// open: consecutive events are mostly in one batch.
type spoolReader struct {
	s    *spool
	name string
	f    *os.File
}

func (r *spoolReader) read(e entry) ([]byte, error) {
	if r.name != e.seg.name {
		r.close()
		f, err := os.Open(filepath.Join(r.s.dir, e.seg.name))
		if err != nil {
			return nil, err
		}
		r.name, r.f = e.seg.name, f
	}
	b := make([]byte, e.size)
	if _, err := r.f.ReadAt(b, e.off); err != nil {
		return nil, fmt.Errorf("spool: %s: %w", e.seg.name, err)
	}
	return b, nil
}

func (r *spoolReader) close() {
	if r.f != nil {
		r.f.Close()
		r.f, r.name = nil, ""
	}
}
