# crowdsec-apiban-bridge
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin/crowdsec-apiban-bridge
# Go test timeout: the first run builds crowdsec and cscli (minutes).
TEST_TIMEOUT ?= 30m

.PHONY: all build cross deps lapi test test-short lint demo bench clean package crash-test fuzz compat-146

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/crowdsec-apiban-bridge

# The bridge without the embedded bouncer (Linux-only) for a FreeBSD
# firewall host or a small ARM PBX beside its own CrowdSec: each must build.
CROSS := freebsd/amd64 linux/arm64 linux/arm/7
cross:
	@set -e; for t in $(CROSS); do \
		os=$${t%%/*}; rest=$${t#*/}; arch=$${rest%%/*}; arm=$${rest#*/}; [ "$$arm" != "$$rest" ] || arm=; \
		echo "cross: GOOS=$$os GOARCH=$$arch$${arm:+ GOARM=$$arm}"; \
		GOOS=$$os GOARCH=$$arch GOARM=$$arm $(GO) build -trimpath -o /dev/null ./cmd/crowdsec-apiban-bridge; \
	done

# Build (once, cached in ~/.cache) the real crowdsec LAPI and cscli the
# tests and the demo run.
lapi:
	$(GO) run ./test/cmd/lapibins

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

# The Debian packages the tests need (kernel firewall tools, systemd-analyze):
# installed when missing and run as root, else the command is printed.
deps:
	bash test/deps.sh

# Everything, including the end-to-end tests against a real LAPI.
test: deps lint cross lapi
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

# Unit tests only (no LAPI, no kernel).
test-short:
	$(GO) test -race -count=1 -short ./...

# One sync from a simulated APIBAN into a real local LAPI, then the verdict
# and the first DEMO_ROWS rows of `cscli decisions list --origin apiban`
# (DEMO_ROWS=0: every row).
DEMO_ROWS ?= 10
demo: build lapi
	$(GO) run ./test/cmd/demo -bridge $(BIN) -rows $(DEMO_ROWS)

# kill -9 at random points of a 20,000-address sync, 25 times, then check
# that LAPI holds every address once (make test runs 5 kills).
CRASH_KILLS ?= 25
crash-test: lapi
	CRASH_KILLS=$(CRASH_KILLS) $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -run 'TestCrash' -v ./test/faults/

# The fault-injection and end-to-end suites against Debian bookworm's
# crowdsec 1.4.6 LAPI (downloaded and unpacked into the cache, not installed).
CS146_DIR ?= $(HOME)/.cache/crowdsec-apiban-bridge/crowdsec-1.4.6-debian
compat-146:
	bash test/faults/debian146.sh $(CS146_DIR)

# A short run of every fuzz target (FUZZTIME each), from the committed
# seed corpora under testdata/fuzz.
FUZZTIME ?= 10s
FUZZ_TARGETS := source/apiban:FuzzParseEntry source/apiban:FuzzClassify \
	source/apiban:FuzzClientResponse config:FuzzLoadConfig \
	bridge/mirror:FuzzRequest
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$fn ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) ./$$pkg; \
	done

bench: deps build lapi
	bash test/bench/run.sh

# The .deb (dist/): nfpm built from the Go module proxy, pinned (v2.45+
# need modules the proxy cannot serve). Debian versions start with a digit.
NFPM        ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.44.0
PKG_VERSION ?= $(shell echo "$(VERSION)" | sed -e 's/^v\([0-9]\)/\1/' -e 's/^\([^0-9]\)/0.0.0~\1/')
package: build
	mkdir -p dist
	sed 's#@BINDIR@#/usr/bin#g' packaging/crowdsec-apiban-bridge.service >dist/crowdsec-apiban-bridge.service
	PKG_VERSION="$(PKG_VERSION)" ARCH="$$($(GO) env GOARCH)" $(NFPM) package -f packaging/nfpm.yaml -p deb -t dist/
	# The arm64 .deb too (a small ARM PBX): its binary, the same recipe.
	GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/linux-arm64/crowdsec-apiban-bridge ./cmd/crowdsec-apiban-bridge
	sed 's#src: bin/crowdsec-apiban-bridge#src: bin/linux-arm64/crowdsec-apiban-bridge#' packaging/nfpm.yaml >dist/nfpm-arm64.yaml
	PKG_VERSION="$(PKG_VERSION)" ARCH=arm64 $(NFPM) package -f dist/nfpm-arm64.yaml -p deb -t dist/

clean:
	rm -rf bin dist
