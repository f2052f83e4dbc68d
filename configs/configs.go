// Package configs holds Berth's sample configurations and embeds them, so
// `berth serve` runs with no file and `berth config` can print a sample.
package configs

import "embed"

// Default is the configuration `berth serve` uses when given no file:
// 127.0.0.1:5000, filesystem storage under ./data.
//
//go:embed config.yml
var Default []byte

// Samples holds every sample: config.yml (the default), filesystem.yml,
// s3.yml, gcs.yml, azure.yml and swift.yml.
//
//go:embed *.yml
var Samples embed.FS
