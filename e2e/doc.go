// Package e2e holds end-to-end tests: real clients (docker, and later
// skopeo, crane, oras, regctl, helm) against a real berth process. They
// need the tools from scripts/tools.sh and, for docker, a running dockerd;
// without them they skip, and under CI=true they fail.
package e2e
