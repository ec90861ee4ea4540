# crowdsec-apiban-bridge
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin/crowdsec-apiban-bridge
# Go test timeout: the first run builds crowdsec and cscli (minutes).
TEST_TIMEOUT ?= 30m

.PHONY: all build lapi test test-short lint demo bench clean

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/crowdsec-apiban-bridge

# Build (once, cached in ~/.cache) the real crowdsec LAPI and cscli the
# tests and the demo run.
lapi:
	$(GO) run ./test/cmd/lapibins

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

# Everything, including the end-to-end tests against a real LAPI.
test: lint lapi
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

# Unit tests only (no LAPI, no kernel).
test-short:
	$(GO) test -race -count=1 -short ./...

# One sync from a simulated APIBAN into a real local LAPI, then
# `cscli decisions list --origin apiban`.
demo: build lapi
	$(GO) run ./test/cmd/demo -bridge $(BIN)

bench: build lapi
	bash test/bench/run.sh

clean:
	rm -rf bin dist
