//go:build !berth_no_azure

package main

import _ "github.com/berth-registry/berth/storage/driver/azure"
