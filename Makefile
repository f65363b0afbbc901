# tidegate — `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin
PKGS := ./...
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/tidegate/tidegate/pkg/cli.Version=$(VERSION)
DEB_PACKAGES := nginx-light libnginx-mod-http-lua lua-cjson lua-resty-core lua-resty-lrucache luajit2 wrk chromium iproute2

.PHONY: help deps build run test e2e unit bench bench-report lint fmt tools clean fuzz

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

deps: ## install nginx, Lua and the test tools from Debian packages (skips what is present)
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "deps: all Debian packages present"; fi
	@# The Debian nginx package starts a system nginx on port 80; tidegate runs its own.
	@if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
	@pkill -x -f 'nginx: master process /usr/sbin/nginx -g daemon on; master_process on;' 2>/dev/null || true

build: ## build bin/tidegate
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/tidegate ./cmd/tidegate

run: deps build ## run the demo: echo backends + tidegate local on deploy/examples/seed (Ctrl-C stops it)
	@./deploy/examples/seed/run.sh $(BIN)/tidegate

tools: ## build kube-apiserver, etcd and kube-controller-manager into bin/ (only when missing; ~12 min cold)
	@./test/tools/build.sh

unit: ## fast tests: no nginx, no API server
	$(GO) test -short $(PKGS)

# make test runs each fuzz target for a count of inputs, not a duration: a
# -fuzztime duration races Go 1.26's fuzz coordinator at the deadline
# ("context deadline exceeded" with no failing input, golang/go#75804).
# The counts take about 15 s each on an idle 2-core machine.
FUZZ_RENDER ?= 2500x
FUZZ_SCHEMA ?= 15000x
FUZZ_ADDRESS ?= 7000x

test: deps tools ## every test: model, render, real nginx, real kube-apiserver, hostile corpus, a short fuzz run
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 30m $(PKGS)
	$(GO) test -run '^$$' -fuzz '^FuzzRender$$' -fuzztime $(FUZZ_RENDER) ./test/hostile
	$(GO) test -run '^$$' -fuzz '^FuzzLuaSchema$$' -fuzztime $(FUZZ_SCHEMA) ./test/hostile
	$(GO) test -run '^$$' -fuzz '^FuzzEndpointAddress$$' -fuzztime $(FUZZ_ADDRESS) ./test/hostile

fuzz: deps ## fuzz model+render, the Lua push schema and endpoint addresses for longer (FUZZTIME=5m each by default)
	$(GO) test -run '^$$' -fuzz '^FuzzRender$$' -fuzztime $(or $(FUZZTIME),5m) ./test/hostile
	$(GO) test -run '^$$' -fuzz '^FuzzLuaSchema$$' -fuzztime $(or $(FUZZTIME),5m) ./test/hostile
	$(GO) test -run '^$$' -fuzz '^FuzzEndpointAddress$$' -fuzztime $(or $(FUZZTIME),5m) ./test/hostile

e2e: deps tools ## only the end-to-end tests (real nginx, real kube-apiserver)
	$(GO) test -count=1 -timeout 30m -v ./test/...

bench: deps build ## run the benchmarks and rewrite BENCHMARKS.md (raw figures in test/bench/results.json)
	$(GO) run ./test/bench -out BENCHMARKS.md -results test/bench/results.json

bench-report: ## rewrite BENCHMARKS.md from test/bench/results.json without measuring (after a change to its text)
	$(GO) run ./test/bench -from test/bench/results.json -out BENCHMARKS.md

lint: ## go vet and gofmt check
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l cmd pkg test lua nginx); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt: ## format the Go code
	gofmt -w cmd pkg test lua nginx

clean: ## remove built binaries (keeps the cached control-plane binaries)
	rm -f $(BIN)/tidegate
