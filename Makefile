# flowblame — see README.md.
GO       ?= go
export PATH := $(PATH):/usr/local/go/bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
FUZZTIME ?= 20s

.PHONY: all build test vet fuzz golden e2e bench bench-collect bench-sockets clean

all: build

## build: a static binary (no cgo) at ./bin/flowblame
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/flowblame ./cmd/flowblame

## test: vet and every test (root-only tests run when root; CI=true makes them mandatory).
## Packages run one at a time (-p 1): the live tests (real iftop, 100 ms processes,
## the collector) measure timing-sensitive things and must not compete for the 2 cores.
test: vet
	$(GO) build ./...
	$(GO) test -count=1 -p 1 -timeout 20m ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

## fuzz: run every native fuzz target briefly (FUZZTIME each)
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$t"; \
	    $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=3s $$pkg > /tmp/flowblame-fuzz.log 2>&1 || { cat /tmp/flowblame-fuzz.log; exit 1; }; \
	  done; \
	done

## golden: regenerate golden files (review the diff!)
golden:
	$(GO) test ./cmd/flowblame ./report ./ingest ./fixtures/captures -update
	$(GO) run ./fixtures/gen

## e2e: the root-only end-to-end attribution test (network namespaces, real processes)
e2e:
	CI=true $(GO) test -count=1 -timeout 5m -v ./e2e/

## bench: analyzer speed vs tcpdump and tshark on a generated 20 M-packet capture
bench:
	bash bench/run.sh

bench-collect:
	bash bench/collect.sh

bench-sockets:
	bash collect/sockwatch/bench/run.sh

clean:
	rm -rf bin
