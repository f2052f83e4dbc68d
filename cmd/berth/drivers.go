package main

// omitTagPrefix, followed by a cloud driver's name, is the build tag that
// leaves that driver and its SDK out (drivers_*.go); the Makefile's OMIT
// sets it.
const omitTagPrefix = "berth_no_"
