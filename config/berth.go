package config

import "time"

// Berth is the top-level `berth:` section: settings Distribution does not
// have, grouped under the names of Distribution's sections they extend.
type Berth struct {
	Storage BerthStorage `yaml:"storage,omitempty"`
}

// BerthStorage extends storage:.
type BerthStorage struct {
	Timeouts StorageTimeouts `yaml:"timeouts,omitempty"`
}

// StorageTimeouts bound each call to the storage backend, by class of
// operation (see driver.Timeouts). Zero keeps the default.
type StorageTimeouts struct {
	Metadata time.Duration `yaml:"metadata,omitempty"`
	Read     time.Duration `yaml:"read,omitempty"`
	Write    time.Duration `yaml:"write,omitempty"`
	Commit   time.Duration `yaml:"commit,omitempty"`
}

// checkBerth refuses what cannot be a timeout.
func (p *parser) checkBerth(b *Berth) {
	t := b.Storage.Timeouts
	for _, k := range []struct {
		key string
		d   time.Duration
	}{{"metadata", t.Metadata}, {"read", t.Read}, {"write", t.Write}, {"commit", t.Commit}} {
		if k.d < 0 {
			p.fail("berth.storage.timeouts."+k.key, "must not be negative, got %s", k.d)
		}
	}
}
