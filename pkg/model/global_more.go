package model

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/tidegate/tidegate/pkg/nginxvalue"
)

// Settings is the ConfigMap's TLS, compression, timeout and forwarding
// keys, with ingress-nginx's defaults.
type Settings struct {
	// HSTS sends Strict-Transport-Security on HTTPS answers.
	HSTS                  bool
	HSTSMaxAge            int
	HSTSIncludeSubdomains bool
	HSTSPreload           bool
	// SSLProtocols and SSLCiphers are nginx's ssl_protocols / ssl_ciphers.
	SSLProtocols []string
	SSLCiphers   string
	// SSLSessionTickets resumes TLS 1.2 sessions from tickets
	// (ssl-session-tickets; off, as in ingress-nginx): their key is made
	// at each start and reload and never rotates in between, and a ticket
	// breaks forward secrecy for as long as the key lives. Sessions
	// resume from the shared session cache either way.
	SSLSessionTickets bool
	UseGzip           bool
	// GzipLevel, GzipMinLength and GzipTypes tune use-gzip (gzip-level,
	// gzip-min-length, gzip-types); GzipTypes are MIME types.
	GzipLevel     int
	GzipMinLength int
	GzipTypes     []string
	// ClientHeaderTimeout, KeepAlive and WorkerShutdownTimeout are seconds.
	ClientHeaderTimeout   int
	KeepAlive             int
	WorkerShutdownTimeout int
	// UpstreamKeepaliveTimeout (seconds) and UpstreamKeepaliveRequests tune
	// connections kept open to backends.
	UpstreamKeepaliveTimeout  int
	UpstreamKeepaliveRequests int
	// ProxyNextUpstream and ProxyNextUpstreamTries are the global retry rules.
	ProxyNextUpstream      []string
	ProxyNextUpstreamTries int
	// ComputeFullForwardedFor appends to a client's X-Forwarded-For instead
	// of replacing it.
	ComputeFullForwardedFor bool
	// RealIPFrom are the proxies trusted to name the client in
	// RealIPHeader: X-Forwarded-For (use-forwarded-headers with
	// proxy-real-ip-cidr) or proxy_protocol (use-proxy-protocol; by default
	// any peer). Empty: the peer is the client.
	RealIPFrom   []netip.Prefix
	RealIPHeader string
	// UseForwardedHeaders trusts the forwarding headers clients send
	// (use-forwarded-headers: a proxy in front sets them): X-Forwarded-For
	// names the client, X-Forwarded-Proto, -Port and -Host reach the
	// backend as sent, and Forwarded, X-Forwarded-Prefix, -Server, -Uri,
	// -Method, X-Original-URL and X-Rewrite-URL pass. Off, tidegate sets
	// the first ones itself and clears the others.
	UseForwardedHeaders bool
	// UseProxyProtocol expects the PROXY protocol header (v1 or v2) on the
	// HTTP and HTTPS ports (use-proxy-protocol), as a load balancer in
	// front sends it.
	UseProxyProtocol bool
	// NoHTTP2 offers only HTTP/1.1 on the HTTPS port (use-http2: "false").
	NoHTTP2 bool
	// BlockCIDRs are refused everywhere with 403 (block-cidrs).
	BlockCIDRs []netip.Prefix
	// KeepAliveRequests is the most requests on one client connection
	// (keep-alive-requests); WorkerConnections the most connections per
	// worker (max-worker-connections; 0: three quarters of the open
	// files); ServerTokens sends nginx's version (server-tokens).
	KeepAliveRequests int
	WorkerConnections int
	ServerTokens      bool
	// MaxWorkerOpenFiles is each worker's limit of open files
	// (max-worker-open-files, worker_rlimit_nofile); 0 is the hard limit
	// tidegate runs under less 1024, as in ingress-nginx.
	MaxWorkerOpenFiles int
	// LuaDicts size the data plane's shared memory (lua-shared-dicts).
	LuaDicts LuaDicts
	// Buffers are ingress-nginx's buffer keys; empty sizes keep nginx's
	// defaults.
	Buffers Buffers
}

// Buffers are the ConfigMap's request and response buffer sizes (nginx
// sizes, validated).
type Buffers struct {
	// ProxyBufferSize and ProxyBuffersNumber size the buffers for a
	// backend's answer (proxy-buffer-size, proxy-buffers-number): headers
	// larger than ProxyBufferSize make nginx answer 502.
	ProxyBufferSize    string
	ProxyBuffersNumber int
	// ClientHeaderBufferSize and LargeClientHeaderBuffers ("4 16k") hold
	// request headers: a larger request line or header is refused with 414
	// or 400 (large-client-header-buffers, client-header-buffer-size).
	ClientHeaderBufferSize   string
	LargeClientHeaderBuffers string
	// ClientBodyBufferSize is the request body kept in memory before a
	// temporary file (client-body-buffer-size; the annotation overrides it).
	ClientBodyBufferSize string
	// UnderscoresInHeaders passes request headers with "_" in their names
	// (enable-underscores-in-headers); nginx drops them by default.
	UnderscoresInHeaders bool
}

// DefaultSettings are ingress-nginx's defaults.
func DefaultSettings() Settings {
	return Settings{
		HSTS: true, HSTSMaxAge: 31536000, HSTSIncludeSubdomains: true,
		SSLProtocols: []string{"TLSv1.2", "TLSv1.3"},
		SSLCiphers:   "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384",
		UseGzip:      false, GzipLevel: 1, GzipMinLength: 256,
		GzipTypes: strings.Fields("application/atom+xml application/javascript application/x-javascript application/json " +
			"application/rss+xml application/vnd.ms-fontobject application/x-font-ttf application/x-web-app-manifest+json " +
			"application/xhtml+xml application/xml font/opentype image/svg+xml image/x-icon text/css text/javascript " +
			"text/plain text/x-component"),
		ClientHeaderTimeout: 60, KeepAliveRequests: 1000, WorkerConnections: 16384, KeepAlive: 75, WorkerShutdownTimeout: 240,
		UpstreamKeepaliveTimeout: 60, UpstreamKeepaliveRequests: 10000,
		ProxyNextUpstream: []string{"error", "timeout"}, ProxyNextUpstreamTries: 3,
		LuaDicts: DefaultLuaDicts(),
	}
}

// mimeType is a MIME type, or "*" (every type).
var mimeType = regexp.MustCompile(`^(\*|[a-z0-9][a-z0-9_.+-]{0,126}/(\*|[a-z0-9][a-z0-9_.+-]{0,126}))$`)

// moreGlobal parses one ConfigMap key into s. handled is false for keys it
// does not know; err says what is wrong with a value.
func moreGlobal(k, v string, s *Settings, useForwarded *bool) (handled bool, err error) {
	boolean := func(dst *bool) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf(`value %q is not "true" or "false"`, v)
		}
		*dst = b
		return nil
	}
	number := func(dst *int, lo, hi int, unit string) error {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), "s"))
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("value %q is not %s from %d to %d", v, unit, lo, hi)
		}
		*dst = n
		return nil
	}
	size := func(dst *string) error {
		v := strings.TrimSpace(v)
		if !nginxvalue.BufferSize(v) {
			return fmt.Errorf("value %q is not an nginx size from 1k to 64m such as 16k", v)
		}
		*dst = v
		return nil
	}
	switch k {
	case "proxy-buffer-size":
		return true, size(&s.Buffers.ProxyBufferSize)
	case "proxy-buffers-number":
		// nginx needs its busy buffers (twice the buffer size) below all
		// buffers but one: fewer than 4 fails nginx -t.
		return true, number(&s.Buffers.ProxyBuffersNumber, 4, 1024, "a number")
	case "client-header-buffer-size":
		return true, size(&s.Buffers.ClientHeaderBufferSize)
	case "client-body-buffer-size":
		return true, size(&s.Buffers.ClientBodyBufferSize)
	case "large-client-header-buffers":
		f := strings.Fields(v)
		if len(f) != 2 {
			return true, fmt.Errorf(`value %q is not "NUMBER SIZE" such as "4 16k"`, v)
		}
		n, _ := strconv.Atoi(f[0])
		if n < 1 || n > 1024 || !nginxvalue.BufferSize(f[1]) {
			return true, fmt.Errorf(`value %q is not "NUMBER SIZE" such as "4 16k"`, v)
		}
		s.Buffers.LargeClientHeaderBuffers = fmt.Sprintf("%d %s", n, f[1])
		return true, nil
	case "enable-underscores-in-headers":
		return true, boolean(&s.Buffers.UnderscoresInHeaders)
	case "hsts":
		return true, boolean(&s.HSTS)
	case "hsts-max-age":
		return true, number(&s.HSTSMaxAge, 0, 1<<30, "a number of seconds")
	case "hsts-include-subdomains":
		return true, boolean(&s.HSTSIncludeSubdomains)
	case "hsts-preload":
		return true, boolean(&s.HSTSPreload)
	case "ssl-protocols":
		var ps []string
		for _, p := range strings.Fields(v) {
			if !nginxvalue.TLSProtocol(p) {
				return true, fmt.Errorf("%q is not one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3", p)
			}
			ps = append(ps, p)
		}
		if len(ps) == 0 {
			return true, fmt.Errorf("no protocol given")
		}
		s.SSLProtocols = ps
		return true, nil
	case "ssl-session-tickets":
		return true, boolean(&s.SSLSessionTickets)
	case "ssl-ciphers":
		if err := nginxvalue.CipherList(v); err != nil {
			return true, err
		}
		s.SSLCiphers = v
		return true, nil
	case "use-gzip":
		return true, boolean(&s.UseGzip)
	case "gzip-level":
		return true, number(&s.GzipLevel, 1, 9, "a gzip level")
	case "gzip-min-length":
		return true, number(&s.GzipMinLength, 0, 1<<30, "a number of bytes")
	case "gzip-types":
		types := strings.Fields(strings.ToLower(v))
		for _, t := range types {
			if !mimeType.MatchString(t) {
				return true, fmt.Errorf("%q is not a MIME type such as text/html", t)
			}
		}
		if len(types) == 0 {
			return true, fmt.Errorf("no MIME type given")
		}
		s.GzipTypes = types
		return true, nil
	case "client-header-timeout":
		return true, number(&s.ClientHeaderTimeout, 1, 3600, "a number of seconds")
	case "keep-alive":
		return true, number(&s.KeepAlive, 0, 3600, "a number of seconds")
	case "worker-shutdown-timeout":
		return true, number(&s.WorkerShutdownTimeout, 0, 86400, "a number of seconds")
	case "upstream-keepalive-timeout":
		return true, number(&s.UpstreamKeepaliveTimeout, 1, 86400, "a number of seconds")
	case "upstream-keepalive-requests":
		return true, number(&s.UpstreamKeepaliveRequests, 1, 1<<30, "a number")
	case "proxy-next-upstream":
		conds := strings.Fields(v)
		for _, c := range conds {
			if !nginxvalue.NextUpstream(c) {
				return true, fmt.Errorf("%q is not a proxy_next_upstream condition", c)
			}
		}
		if len(conds) == 0 {
			return true, fmt.Errorf("empty list")
		}
		s.ProxyNextUpstream = conds
		return true, nil
	case "proxy-next-upstream-tries":
		return true, number(&s.ProxyNextUpstreamTries, 0, 100, "a number")
	case "compute-full-forwarded-for":
		return true, boolean(&s.ComputeFullForwardedFor)
	case "use-forwarded-headers":
		return true, boolean(useForwarded)
	case "use-proxy-protocol":
		return true, boolean(&s.UseProxyProtocol)
	case "server-tokens":
		return true, boolean(&s.ServerTokens)
	case "use-http2":
		on := true
		err := boolean(&on)
		s.NoHTTP2 = !on
		return true, err
	case "keep-alive-requests":
		return true, number(&s.KeepAliveRequests, 1, 1<<30, "a number")
	case "max-worker-connections":
		if strings.TrimSpace(v) == "0" {
			s.WorkerConnections = 0
			return true, nil
		}
		return true, number(&s.WorkerConnections, 512, 1<<20, "0 or a number")
	case "max-worker-open-files":
		if strings.TrimSpace(v) == "0" {
			s.MaxWorkerOpenFiles = 0
			return true, nil
		}
		// Linux allows at most 2^30 (fs.nr_open's ceiling).
		return true, number(&s.MaxWorkerOpenFiles, 1024, 1<<30, "0 or a number")
	case "block-cidrs":
		out, err := nginxvalue.CIDRs(v)
		if err == nil {
			s.BlockCIDRs = out
		}
		return true, err
	case "proxy-real-ip-cidr":
		out, err := nginxvalue.CIDRs(v)
		if err == nil {
			s.RealIPFrom = out
		}
		return true, err
	}
	return false, nil
}
