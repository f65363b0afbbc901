# syntax=docker/dockerfile:1
# tidegate: the static Go binary (with lua/ and nginx/nginx.tmpl embedded;
# it writes the Lua files into --workdir at start) on Debian's nginx + Lua
# packages, the same ones `make deps` installs (DEB_RUNTIME in the Makefile;
# `make test` and `make lint` check that this list has them all).
#
#   docker build -t tidegate/tidegate:dev --build-arg VERSION=$(git describe --tags --always) .

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY pkg ./pkg
COPY lua ./lua
COPY nginx ./nginx
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/tidegate/tidegate/pkg/cli.Version=${VERSION}" \
      -o /out/tidegate ./cmd/tidegate

FROM debian:bookworm-slim
# nginx binds 80/443 as a non-root user. In the DaemonSet of deploy/ the pod
# sysctl net.ipv4.ip_unprivileged_port_start=0 allows it with no capability.
# Where that sysctl cannot be set (hostNetwork), the file capability below
# lets nginx bind them when the container grants NET_BIND_SERVICE and allows
# privilege escalation (see deploy/daemonset.yaml).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      nginx-light libnginx-mod-http-lua lua-cjson lua-resty-core lua-resty-lrucache \
      ca-certificates libcap2-bin \
 && setcap cap_net_bind_service=+ep /usr/sbin/nginx \
 && apt-get purge -y libcap2-bin \
 && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/* /var/log/nginx/* \
 && groupadd --system --gid 10001 tidegate \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/tidegate --no-create-home \
      --shell /usr/sbin/nologin tidegate \
 && install -d -o tidegate -g tidegate -m 0750 /var/lib/tidegate
COPY --from=build /out/tidegate /usr/local/bin/tidegate
USER 10001:10001
WORKDIR /var/lib/tidegate
# 80/443 traffic (set by --http-port/--https-port), 10254 /healthz and /metrics.
EXPOSE 80 443 10254
ENTRYPOINT ["/usr/local/bin/tidegate"]
# supervise keeps nginx serving when the controller dies (deploy/daemonset.yaml).
CMD ["supervise", "--", "controller", "--http-port=80", "--https-port=443", "--workdir=/var/lib/tidegate", "--access-log=/dev/stdout", "--error-log=/dev/stderr"]
