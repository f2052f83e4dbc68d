package main

import (
	"strings"
	"testing"
)

// Docker's own output is what tells a transfer from a layer it found
// already there; the lines are as docker 20.10 prints them without a
// terminal.
func TestCheckTransferredCountsEveryLayer(t *testing.T) {
	pulled := "1: Pulling from bench/app\n" +
		"aaa: Pulling fs layer\nbbb: Pulling fs layer\n" +
		"aaa: Download complete\naaa: Pull complete\n" +
		"bbb: Download complete\nbbb: Pull complete\n" +
		"Digest: sha256:0123\nStatus: Downloaded newer image for r/bench/app:1\n"
	pushed := "aaa: Preparing\nbbb: Preparing\naaa: Pushed\nbbb: Pushed\n1: digest: sha256:0123 size: 739\n"
	for _, tc := range []struct {
		name, out, verb, status string
		layers                  int
		ok                      bool
	}{
		{"pull of every layer", pulled, "pull", "Pull complete", 2, true},
		{"pull of fewer layers than the image has", pulled, "pull", "Pull complete", 3, false},
		{"pull reporting more layers than the image has", pulled, "pull", "Pull complete", 1, false},
		{"pull with a layer there already", strings.Replace(pulled, "bbb: Pull complete", "bbb: Already exists", 1), "pull", "Pull complete", 2, false},
		{"pull that found the whole image", "1: Pulling from bench/app\nDigest: sha256:0123\nStatus: Downloaded newer image for r/bench/app:1\n", "pull", "Pull complete", 2, false},
		{"pull counted by the push's status", pulled, "pull", "Pushed", 2, false},
		{"push of every layer", pushed, "push", "Pushed", 2, true},
		{"push with a layer there already", strings.Replace(pushed, "bbb: Pushed", "bbb: Layer already exists", 1), "push", "Pushed", 2, false},
		{"push with a layer mounted from another repository", strings.Replace(pushed, "bbb: Pushed", "bbb: Mounted from bench/other", 1), "push", "Pushed", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkTransferred(tc.out, tc.verb, tc.status, tc.layers)
			if (err == nil) != tc.ok {
				t.Fatalf("checkTransferred: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
