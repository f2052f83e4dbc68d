package configs_test

import (
	"io/fs"
	"testing"

	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/configs"
)

func TestEverySampleParses(t *testing.T) {
	names, err := fs.Glob(configs.Samples, "*.yml")
	if err != nil || len(names) < 6 {
		t.Fatalf("samples %v, %v: want at least 6", names, err)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			data, err := fs.ReadFile(configs.Samples, name)
			if err != nil {
				t.Fatal(err)
			}
			c, err := config.Parse(name, data, nil)
			if err != nil {
				t.Fatalf("parse:\n%v", err)
			}
			// A sample shows what to write: nothing Berth would warn about.
			if len(c.Warnings) > 0 {
				t.Errorf("warnings: %q", c.Warnings)
			}
		})
	}
}

func TestDefaultServesLocalFilesystem(t *testing.T) {
	c, err := config.Parse("config.yml", configs.Default, nil)
	if err != nil {
		t.Fatal(err)
	}
	name, params := c.Storage.Driver()
	if name != "filesystem" || params["rootdirectory"] != "./data" {
		t.Errorf("driver %s %v, want filesystem under ./data", name, params)
	}
	if c.HTTP.Addr != "127.0.0.1:5000" || c.Storage.Delete.Enabled || c.Log.Level != "info" || c.Log.Formatter != "text" {
		t.Errorf("addr %q delete %v log %s/%s, want 127.0.0.1:5000, false, info/text",
			c.HTTP.Addr, c.Storage.Delete.Enabled, c.Log.Level, c.Log.Formatter)
	}
}
