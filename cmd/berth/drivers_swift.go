//go:build !berth_no_swift

package main

import _ "github.com/berth-registry/berth/storage/driver/swift"
