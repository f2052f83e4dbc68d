package config

import "time"

// StorageTimeouts bound each call to the storage backend, by class of
// operation (see driver.Timeouts). Zero keeps the default.
type StorageTimeouts struct {
	Metadata time.Duration `yaml:"metadata,omitempty"`
	Read     time.Duration `yaml:"read,omitempty"`
	Write    time.Duration `yaml:"write,omitempty"`
	Commit   time.Duration `yaml:"commit,omitempty"`
}

// checkBerthTimeouts refuses what cannot be a timeout.
func (p *parser) checkBerthTimeouts(t *StorageTimeouts) {
	for _, k := range []struct {
		key string
		d   time.Duration
	}{{"metadata", t.Metadata}, {"read", t.Read}, {"write", t.Write}, {"commit", t.Commit}} {
		if k.d < 0 {
			p.fail("berth.storage.timeouts."+k.key, "must not be negative, got %s", k.d)
		}
	}
}
