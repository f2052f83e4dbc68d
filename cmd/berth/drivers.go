package main

// omitTagPrefix, followed by a driver's name, is the build tag that leaves
// that cloud driver, and its SDK, out of the binary (drivers_*.go):
// `make build OMIT="azure gcs"`. Each SDK costs megabytes of executable
// and of resident memory from its package initialisation alone, used or
// not (docs/benchmarks.md, row 9).
const omitTagPrefix = "berth_no_"
