#!/usr/bin/env bash
# Regenerates storage/testdata/distribution-v3/: a storage tree written by
# CNCF Distribution v3.1.2 (filesystem driver) through crane, and
# expected.json, what a reader of that tree must find in it. See the
# README.md beside the fixture for what it holds and why.
#
# Needs curl, jq and tar; installs the pinned crane and registry itself.
# Runs offline: every image is built from tiny tarballs made here.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$root/storage/testdata/distribution-v3
"$root/scripts/tools.sh" crane registry
crane=$root/.cache/bin/crane
registry=$root/.cache/bin/registry

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

# start_registry NAME prints the address of a new Distribution serving
# $work/NAME; its log is $work/NAME.log.
start_registry() {
	local name=$1 port
	port=$(free_port)
	mkdir -p "$work/$name"
	cat >"$work/$name.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/$name
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: fixture
YAML
	"$registry" serve "$work/$name.yml" >"$work/$name.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && { echo "127.0.0.1:$port"; return; }
		sleep 0.1
	done
	cat "$work/$name.log" >&2
	echo "registry $name did not start" >&2
	exit 1
}

# layer NAME FILE=CONTENT... writes $work/NAME.tar, byte-for-byte
# reproducible, holding FILE with CONTENT for each pair.
layer() {
	local name=$1 dir=$work/src/$1
	shift
	mkdir -p "$dir"
	for kv in "$@"; do
		mkdir -p "$dir/$(dirname "${kv%%=*}")"
		printf '%s\n' "${kv#*=}" >"$dir/${kv%%=*}"
	done
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
		-C "$dir" -cf "$work/$name.tar" .
}

c() { "$crane" --insecure "$@"; }

# Build everything in a staging registry, so the fixture holds only what
# is copied into it: the intermediate manifests crane mutate leaves behind
# stay in staging.
stage=$(start_registry staging)
reg=$(start_registry fixture)

layer base etc/os-release='NAME=fixture' etc/motd='hello from layer one'
layer app usr/share/app/README='hello from layer two'
layer tools usr/bin/tool='#!/bin/sh echo tool'
layer amd64 arch='amd64'
layer arm64 arch='arm64'
layer extra opt/team/notes='team app layer'

# A three-layer OCI image, and a two-layer Docker schema2 image.
c append --oci-empty-base -f "$work/base.tar" -f "$work/app.tar" -f "$work/tools.tar" -t "$stage/hello:oci"
c append -f "$work/base.tar" -f "$work/app.tar" -t "$stage/hello:docker"

# Two single-platform OCI images under one OCI index.
for arch in amd64 arm64; do
	c append --oci-empty-base -f "$work/base.tar" -f "$work/$arch.tar" -t "$stage/hello:$arch"
	c mutate --set-platform "linux/$arch" -t "$stage/hello:$arch" "$stage/hello:$arch"
done
c index append -m "$stage/hello:amd64" -m "$stage/hello:arm64" -t "$stage/hello:multi"

# Into the fixture: two tags on one digest, the schema2 image, the index
# (its children go by digest, untagged).
c copy "$stage/hello:oci" "$reg/hello:1.0"
c copy "$stage/hello:oci" "$reg/hello:latest"
c copy "$stage/hello:docker" "$reg/hello:docker"
c copy "$stage/hello:multi" "$reg/hello:multi"

# A nested repository built on hello:1.0: crane mounts the shared layers
# from hello (cross-repository mount) and uploads only the new one.
c append -b "$reg/hello:1.0" -f "$work/extra.tar" -t "$reg/team/app:1.0"

# One upload started and left unfinished, so _uploads/ holds a session.
location=$(curl -fsS -o /dev/null -w '%header{location}' -X POST "http://$reg/v2/hello/blobs/uploads/")
[[ $location == http* ]] || location=http://$reg$location
curl -fsS -o /dev/null -X PATCH -H 'Content-Type: application/octet-stream' \
	--data-binary 'half of a blob' "$location"

expected=$work/expected.json
{
	echo '{"generator": "CNCF Distribution '"$("$registry" --version | awk '{print $NF}')"', crane '"$("$crane" version)"'", "repositories": ['
	first=1
	for repo in $(c catalog "$reg" | sort); do
		rdir=$work/fixture/docker/registry/v2/repositories/$repo
		((first)) || echo ','
		first=0
		echo '{"name": "'"$repo"'", "tags": {'
		sep=''
		for tag in $(c ls "$reg/$repo" | sort); do
			printf '%s"%s": "%s"' "$sep" "$tag" "$(c digest "$reg/$repo:$tag")"
			sep=', '
		done
		echo '}, "manifests": ['
		sep=''
		for hex in $(ls "$rdir/_manifests/revisions/sha256" | sort); do
			c manifest "$reg/$repo@sha256:$hex" >"$work/m.json"
			printf '%s{"digest": "sha256:%s", "mediaType": %s, "size": %d}' "$sep" "$hex" \
				"$(jq .mediaType "$work/m.json")" "$(stat -c %s "$work/m.json")"
			sep=', '
		done
		echo '], "layers": ['
		sep=''
		for hex in $(ls "$rdir/_layers/sha256" | sort); do
			printf '%s"sha256:%s"' "$sep" "$hex"
			sep=', '
		done
		echo '], "uploads": ['
		sep=''
		for id in $(ls "$rdir/_uploads" 2>/dev/null | sort); do
			printf '%s"%s"' "$sep" "$id"
			sep=', '
		done
		echo ']}'
	done
	echo '], "blobs": ['
	sep=''
	for data in $(find "$work/fixture/docker/registry/v2/blobs" -name data | sort); do
		hex=$(basename "$(dirname "$data")")
		printf '%s{"digest": "sha256:%s", "size": %d}' "$sep" "$hex" "$(stat -c %s "$data")"
		sep=', '
	done
	echo ']}'
} >"$expected.raw"
jq . "$expected.raw" >"$expected"

for p in "${pids[@]}"; do kill "$p"; done
wait 2>/dev/null || true
pids=()

rm -rf "$out/docker" "$out/expected.json"
mkdir -p "$out"
cp -a "$work/fixture/docker" "$out/docker"
cp "$expected" "$out/expected.json"
echo "fixture written to $out" >&2
