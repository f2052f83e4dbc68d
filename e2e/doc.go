// Package e2e holds end-to-end tests: real clients (docker, skopeo, crane,
// oras, regctl, helm) against a real berth process, or against the Berth
// image run by dockerd. They need the tools from scripts/tools.sh, skopeo
// and, for docker, a running dockerd; without them they skip, and under
// CI=true they fail. BERTH_TEST_BINARY runs them against another registry
// binary, such as CNCF Distribution, to tell Berth's bugs from a client's.
package e2e
