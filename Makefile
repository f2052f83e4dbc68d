# Berth's everyday commands. `make test` is what CI runs (through .ci/run).

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
# disable_grpc_modules leaves out the GCS SDK's gRPC DirectPath (xDS, Envoy
# protos), which Berth never uses: it talks to GCS over JSON. The binary
# is 20 MB smaller and its idle RSS 12 MiB lower. bench/ and
# internal/testenv build with the same tags, from internal/release, which a
# test keeps equal to this line.
TAGS     := disable_grpc_modules
# OMIT leaves cloud drivers out of `make build`, `make image` and `make run`
# (OMIT="azure gcs s3 swift" keeps the filesystem one): each SDK costs
# megabytes of binary and of resident memory, used or not. The release
# build has them all; tests, lint and bench always build the release.
# Set on the command line only, not taken from the environment.
OMIT     :=
CLOUD_DRIVERS := azure gcs s3 swift
omit_bad := $(filter-out $(CLOUD_DRIVERS),$(OMIT))
$(if $(omit_bad),$(error OMIT: $(omit_bad): not a cloud driver (expected some of: $(CLOUD_DRIVERS))))
comma    := ,
space    := $(subst ,, )
BUILD_TAGS := $(subst $(space),$(comma),$(strip $(TAGS) $(addprefix berth_no_,$(OMIT))))
# The whole suite, end-to-end tests included, must stay well inside CI's
# budget on a two-core machine.
TEST_TIMEOUT ?= 20m
TOOLS    := .cache/bin

.PHONY: run build test lint tools clean image bench bench-quick

## run: start Berth with the embedded default config (filesystem storage)
run:
	$(GO) run -tags $(BUILD_TAGS) ./cmd/berth serve

## build: a static binary in bin/berth
build:
	CGO_ENABLED=0 $(GO) build -tags $(BUILD_TAGS) -trimpath -ldflags '$(LDFLAGS)' -o bin/berth ./cmd/berth

## image: the FROM scratch container image, tagged $(IMAGE) and $(IMAGE_LATEST)
IMAGE    ?= berth:$(VERSION)
# Tests set IMAGE_LATEST= (no second tag, so no dangling old build) and a
# private IMAGE_CTX (so concurrent runs do not share a build context).
IMAGE_LATEST ?= berth:latest
IMAGE_CTX ?= .cache/image
image:
	rm -rf $(IMAGE_CTX) && mkdir -p $(IMAGE_CTX)/registry
	CGO_ENABLED=0 $(GO) build -tags $(BUILD_TAGS) -trimpath -ldflags '$(LDFLAGS)' -o $(IMAGE_CTX)/berth ./cmd/berth
	cp /etc/ssl/certs/ca-certificates.crt Dockerfile $(IMAGE_CTX)/
	cp configs/docker.yml $(IMAGE_CTX)/config.yml
	printf 'root:x:0:0:root:/:/sbin/nologin\nberth:x:65532:65532:berth:/var/lib/registry:/sbin/nologin\n' > $(IMAGE_CTX)/passwd
	printf 'root:x:0:\nberth:x:65532:\n' > $(IMAGE_CTX)/group
	mkdir -p $(IMAGE_CTX)/etc-docker-registry && ln -s /etc/berth/config.yml $(IMAGE_CTX)/etc-docker-registry/config.yml
	DOCKER_BUILDKIT=0 docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) $(addprefix -t ,$(IMAGE_LATEST)) $(IMAGE_CTX)

## test: install the pinned test tools, then run every test
# -count=1: the end-to-end tests and the bench smoke test build and run
# ./cmd/berth as a program, which go test's result cache does not see, so a
# cached pass could hide a change to the server.
test: tools
	$(GO) test -tags $(TAGS) -count=1 -timeout $(TEST_TIMEOUT) ./...

## lint: gofmt, go vet and staticcheck
lint:
	@scripts/tools.sh staticcheck
	@out=$$(gofmt -l $$($(GO) list -f '{{.Dir}}' ./...)); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags $(TAGS) ./...
	$(TOOLS)/staticcheck -tags $(TAGS) ./...

## bench: Berth against CNCF Distribution, side by side (BACKEND=s3 for MinIO,
## BACKEND=azure for Azurite, BACKEND=gcs for fake-gcs-server, behind a
## WAN-shaped link, WAN=off without it); writes docs/benchmarks.md
BACKEND ?= filesystem
bench:
	@scripts/tools.sh registry $(if $(filter s3,$(BACKEND)),minio toxiproxy-server)$(if $(filter azure,$(BACKEND)),azurite-blob toxiproxy-server)$(if $(filter gcs,$(BACKEND)),fake-gcs-server toxiproxy-server)
	$(GO) run ./bench -backend $(BACKEND)

## bench-quick: every benchmark scenario, small, in under a minute
bench-quick:
	@scripts/tools.sh registry $(if $(filter s3,$(BACKEND)),minio toxiproxy-server)$(if $(filter azure,$(BACKEND)),azurite-blob toxiproxy-server)$(if $(filter gcs,$(BACKEND)),fake-gcs-server toxiproxy-server)
	$(GO) run ./bench -quick -backend $(BACKEND)

## tools: install the pinned test tools into .cache/
tools:
	@scripts/tools.sh

## clean: remove build output and the tool cache
clean:
	rm -rf bin .cache
