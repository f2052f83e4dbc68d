//go:build !berth_no_s3

package main

import _ "github.com/berth-registry/berth/storage/driver/s3"
