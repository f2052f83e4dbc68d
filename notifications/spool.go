package notifications

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// A spool is one endpoint's directory of undelivered events: one file per
// event, named by its sequence number, holding the event's JSON. A file is
// written under a temporary name, synced, renamed into place and the
// directory synced, so after a crash an event is either whole or absent —
// never torn — and the rename is what makes it durable. Removing a
// delivered event needs no sync: if the removal is lost in a crash the
// event is sent again, which at-least-once allows.
type spool struct {
	dir  string
	dirf *os.File // kept open to sync the directory after each rename
	lock *os.File
}

// entry is one spooled event.
type entry struct {
	seq  uint64
	size int64
}

const (
	spoolExt  = ".json"
	tmpPrefix = "tmp-"
	lockName  = "LOCK"
)

// openSpool opens (creating) the spool in dir, takes its lock so that no
// other process delivers the same events, and lists what it holds, oldest
// first.
func openSpool(dir string) (*spool, []entry, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("spool: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("spool: %w", err)
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("spool %s is in use by another process: %w", dir, err)
	}
	dirf, err := os.Open(dir)
	if err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("spool: %w", err)
	}
	s := &spool{dir: dir, dirf: dirf, lock: lock}
	entries, err := s.scan()
	if err != nil {
		s.close()
		return nil, nil, err
	}
	return s, entries, nil
}

// scan lists the spooled events and removes what a crash left half
// written.
func (s *spool) scan() ([]entry, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var entries []entry
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, tmpPrefix) {
			_ = os.Remove(filepath.Join(s.dir, name))
			continue
		}
		seq, ok := parseName(name)
		if !ok || !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("spool: %w", err)
		}
		entries = append(entries, entry{seq: seq, size: fi.Size()})
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmpSeq(a.seq, b.seq) })
	return entries, nil
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

// fileName is fixed width, so a directory listing sorts in sequence order
// for a human too.
func fileName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, spoolExt) }

func parseName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, spoolExt)
	if !ok || len(base) != 20 {
		return 0, false
	}
	seq, err := strconv.ParseUint(base, 10, 64)
	return seq, err == nil
}

// write stores one event durably under seq.
func (s *spool) write(seq uint64, data []byte) error {
	f, err := os.CreateTemp(s.dir, tmpPrefix)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, fileName(seq)))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("spool: %w", err)
	}
	if err := s.dirf.Sync(); err != nil {
		return fmt.Errorf("spool: sync %s: %w", s.dir, err)
	}
	return nil
}

func (s *spool) read(seq uint64) ([]byte, error) {
	return os.ReadFile(filepath.Join(s.dir, fileName(seq)))
}

// remove forgets a delivered or dropped event; one already gone is fine.
func (s *spool) remove(seq uint64) error {
	err := os.Remove(filepath.Join(s.dir, fileName(seq)))
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
