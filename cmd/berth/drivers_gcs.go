//go:build !berth_no_gcs

package main

import _ "github.com/berth-registry/berth/storage/driver/gcs"
