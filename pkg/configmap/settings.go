package configmap

import (
	"net/netip"
	"strings"
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
