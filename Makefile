# tidegate — `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin
PKGS := ./...
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/tidegate/tidegate/pkg/cli.Version=$(VERSION)
# Debian packages. DEB_RUNTIME is what tidegate runs on: `make deps` (and so
# `make run`, the demo) installs it, and the Dockerfile installs the same list.
# DEB_TEST is what only tests need, installed by `make deps-test`: luajit for
# the Lua unit tests, wrk for the benchmarks, Chromium for the screenshot test
# of the status page, iproute2 for the network namespace of the Kubernetes tests.
DEB_RUNTIME := nginx-light libnginx-mod-http-lua lua-cjson lua-resty-core lua-resty-lrucache
DEB_TEST := luajit2 wrk chromium iproute2

# apt_install installs the packages of list $(1) that are missing; $(2) names
# the target in its messages.
apt_install = missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "$(2): installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "$(2): all Debian packages present"; fi

# check_dockerfile fails when the Dockerfile leaves out a runtime package.
check_dockerfile = for p in $(DEB_RUNTIME); do grep -qw -- "$$p" Dockerfile || { echo "Dockerfile does not install $$p (DEB_RUNTIME)"; exit 1; }; done

.PHONY: help deps deps-test build run test e2e unit bench bench-report lint fmt tools clean fuzz

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

deps: ## install what tidegate runs on: nginx and Lua from Debian packages (skips what is present)
	@$(call apt_install,$(DEB_RUNTIME),deps)
	@# The Debian nginx package starts a system nginx on port 80; tidegate runs its own.
	@if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
	@pkill -x -f 'nginx: master process /usr/sbin/nginx -g daemon on; master_process on;' 2>/dev/null || true

deps-test: deps ## also install what only the tests need: luajit, wrk, Chromium, iproute2
	@$(call apt_install,$(DEB_TEST),deps-test)

build: ## build bin/tidegate
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/tidegate ./cmd/tidegate

run: deps build ## run the demo: echo backends + tidegate local on deploy/examples/seed (Ctrl-C stops it)
	@./deploy/examples/seed/run.sh $(BIN)/tidegate

tools: ## build kube-apiserver, etcd and kube-controller-manager into bin/ (only when missing; ~12 min cold)
	@./test/tools/build.sh

unit: ## fast tests: no nginx, no API server
	$(GO) test -short $(PKGS)

# The fuzz targets of ./test/hostile, each with the count of inputs make test
# runs: a count, not a duration, since a -fuzztime duration races Go 1.26's
# fuzz coordinator at the deadline ("context deadline exceeded" with no
# failing input, golang/go#75804). The counts take about 15 s each on an idle
# 2-core machine. `make fuzz` runs each for FUZZTIME (5m by default).
FUZZ_RENDER ?= 2500x
FUZZ_SCHEMA ?= 15000x
FUZZ_ADDRESS ?= 7000x
FUZZ_TARGETS := FuzzRender:$(FUZZ_RENDER) FuzzLuaSchema:$(FUZZ_SCHEMA) FuzzEndpointAddress:$(FUZZ_ADDRESS)

# fuzz is the command that runs every fuzz target, for $(1) when given, else
# for its count.
fuzz = $(foreach t,$(FUZZ_TARGETS),$(GO) test -run '^$$' -fuzz '^$(word 1,$(subst :, ,$(t)))$$' -fuzztime $(or $(1),$(word 2,$(subst :, ,$(t)))) ./test/hostile &&) true

test: deps-test tools ## every test: model, render, real nginx, real kube-apiserver, hostile corpus, a short fuzz run
	@$(check_dockerfile)
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 30m $(PKGS)
	$(call fuzz)

fuzz: deps ## fuzz model+render, the Lua push schema and endpoint addresses for longer (FUZZTIME=5m each by default)
	$(call fuzz,$(or $(FUZZTIME),5m))

e2e: deps-test tools ## only the end-to-end tests (real nginx, real kube-apiserver)
	$(GO) test -count=1 -timeout 30m -v ./test/...

bench: deps-test build ## run the benchmarks and rewrite BENCHMARKS.md (raw figures in test/bench/results.json)
	$(GO) run ./test/bench -out BENCHMARKS.md -results test/bench/results.json

bench-report: ## rewrite BENCHMARKS.md from test/bench/results.json without measuring (after a change to its text)
	$(GO) run ./test/bench -from test/bench/results.json -out BENCHMARKS.md

lint: ## go vet, gofmt check, the Dockerfile's packages
	$(GO) vet $(PKGS)
	@$(check_dockerfile)
	@out=$$(gofmt -l cmd pkg test lua nginx); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt: ## format the Go code
	gofmt -w cmd pkg test lua nginx

clean: ## remove built binaries (keeps the cached control-plane binaries)
	rm -f $(BIN)/tidegate
