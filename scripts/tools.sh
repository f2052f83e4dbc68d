#!/usr/bin/env bash
# Installs the pinned tools Berth's tests use into .cache/ at the root of the
# clone this script lives in, so a fresh clone anywhere tests the same way.
#
#   scripts/tools.sh              install every tool
#   scripts/tools.sh crane oras   install only these
#   scripts/tools.sh --list       print the table
#
# Idempotent: a tool whose binary exists and whose stamp records the pinned
# version is skipped without touching the network.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=$root/.cache
bin=$cache/bin
stamps=$cache/stamps

# Go tools, built with `go install`: one "name module/path@version" line
# each; the binary is installed as .cache/bin/name (toxiproxy's is called
# plain "server" by go install, too generic to keep).
go_tools='
crane       github.com/google/go-containerregistry/cmd/crane@v0.22.1
oras        oras.land/oras/cmd/oras@v1.3.6
regctl      github.com/regclient/regclient/cmd/regctl@v0.11.7
registry    github.com/distribution/distribution/v3/cmd/registry@v3.1.2
staticcheck honnef.co/go/tools/cmd/staticcheck@v0.8.2
minio       github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
fake-gcs-server github.com/fsouza/fake-gcs-server@v1.56.1
pebble      github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.1
helm        helm.sh/helm/v3/cmd/helm@v3.19.0
pebble-challtestsrv github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@v2.10.1
toxiproxy-server github.com/Shopify/toxiproxy/v2/cmd/server@v2.5.0
conformance github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111
'

# npm packages, installed under .cache/node: one "name package@version" line
# each; name is the binary linked into .cache/bin.
npm_tools='
azurite-blob azurite@3.37.0
'

usage() {
	echo "usage: scripts/tools.sh [--list] [NAME...]" >&2
	exit 2
}

# table prints "kind name spec" for every tool.
table() {
	echo "$go_tools" | awk 'NF == 2 { print "go", $1, $2 }'
	echo "$npm_tools" | awk 'NF == 2 { print "npm", $1, $2 }'
}

installed() { # name spec
	[[ -x $bin/$1 && -f $stamps/$1 && "$(cat "$stamps/$1")" == "$2" ]]
}

install_go() { # name spec
	echo "tools: go install $2" >&2
	# GOFLAGS from the caller (-mod=…, -tags=…) must not leak into a tool
	# build; GOTOOLCHAIN=local keeps the build on the installed Go.
	local tmp
	tmp=$(mktemp -d "$cache/gobin.XXXXXX")
	GOBIN=$tmp GOFLAGS=-buildvcs=false GOTOOLCHAIN=local CGO_ENABLED=0 \
		go install "$2"
	mv "$tmp"/* "$bin/$1"
	rmdir "$tmp"
}

install_npm() { # name spec
	echo "tools: npm install $2" >&2
	mkdir -p "$cache/node"
	npm install --prefix "$cache/node" --no-audit --no-fund --silent "$2"
	ln -sf "../node/node_modules/.bin/$1" "$bin/$1"
}

main() {
	local list=0
	local -a want=()
	for a in "$@"; do
		case $a in
		--list) list=1 ;;
		-*) usage ;;
		*) want+=("$a") ;;
		esac
	done
	if ((list)); then
		table
		return
	fi
	# Unknown names are a typo in a Makefile or a hint: fail loudly.
	for w in "${want[@]}"; do
		table | awk -v n="$w" '$2 == n { found = 1 } END { exit !found }' ||
			{ echo "tools: unknown tool $w (see scripts/tools.sh --list)" >&2; exit 2; }
	done
	mkdir -p "$bin" "$stamps"
	local kind name spec
	while read -r kind name spec; do
		if ((${#want[@]})) && [[ " ${want[*]} " != *" $name "* ]]; then
			continue
		fi
		installed "$name" "$spec" && continue
		"install_$kind" "$name" "$spec"
		[[ -x $bin/$name ]] || { echo "tools: $name not found in $bin after install" >&2; exit 1; }
		echo "$spec" >"$stamps/$name"
	done < <(table)
}

main "$@"
