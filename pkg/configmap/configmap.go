// Package configmap parses the controller ConfigMap, ingress-nginx's keys,
// into typed settings: one registry of keys, one file per group, each
// key's validator beside it, the shape pkg/annotations has. A value that
// fails its check leaves the default and is reported; unknown keys are
// reported too. Nothing here produces nginx text.
package configmap

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/tidegate/tidegate/pkg/annotations"
)

// Entry is one line of the report, as for annotations: Key is the
// ConfigMap key; Status is Applied, Different (applied with a warning in
// Detail), Unsupported, Rejected or Unknown; Detail is the whole reason.
type Entry = annotations.Entry

// Config is everything the ConfigMap sets.
type Config struct {
	// Global is what nginx.conf is rendered from (model.Global).
	Global
	// SSLRedirect redirects plain HTTP to https on hosts with TLS
	// (ssl-redirect).
	SSLRedirect bool
	// ForceSSLRedirect redirects plain HTTP to https on every host, TLS
	// section or not (force-ssl-redirect; the annotation overrides it).
	ForceSSLRedirect bool
	// AllowSnippetAnnotations opens the snippet annotations
	// (allow-snippet-annotations).
	AllowSnippetAnnotations bool
	// AllowedResponseHeaders are the lower-case header names
	// custom-headers may set (global-allowed-response-headers).
	AllowedResponseHeaders map[string]bool
	// LoadBalance is the balancing algorithm of backends whose Ingress
	// sets none: round_robin or ewma (load-balance).
	LoadBalance string

	// useForwarded is use-forwarded-headers until finish applies it.
	useForwarded bool
}

// Global is the part of the ConfigMap nginx.conf is rendered from; the
// model passes it on as Structure.Global.
type Global struct {
	// WorkerProcesses is "auto" or a number (worker-processes).
	WorkerProcesses string
	// ProxyConnectTimeout, ProxyReadTimeout and ProxySendTimeout are
	// seconds.
	ProxyConnectTimeout int
	ProxyReadTimeout    int
	ProxySendTimeout    int
	// ProxyBodySize is an nginx size ("1m").
	ProxyBodySize string
	// UpstreamKeepalive is the number of idle keepalive connections per
	// worker (upstream-keepalive-connections).
	UpstreamKeepalive int
	// Settings are the TLS, compression, timeout, buffer and forwarding
	// keys the renderer reads (model.Global.Settings).
	Settings Settings
	// DisableAccessLog turns the access log off (enable-access-log: "false").
	DisableAccessLog bool
	// LogFormatUpstream is a custom access log format, checked by
	// ValidLogFormat; empty means ingress-nginx's default.
	LogFormatUpstream string
	// LogFormatEscapeJSON writes the custom format with escape=json.
	LogFormatEscapeJSON bool
	// LogFormatJSON selects the built-in JSON access log.
	LogFormatJSON bool
	// CustomHTTPErrors are the status codes every location sends to the
	// default backend (custom-http-errors), unless its Ingress sets its own.
	CustomHTTPErrors []int
}

// Default is the Config of an empty ConfigMap: ingress-nginx's defaults.
func Default() Config {
	return Config{
		Global: Global{
			WorkerProcesses:     "auto",
			ProxyConnectTimeout: 5,
			ProxyReadTimeout:    60,
			ProxySendTimeout:    60,
			ProxyBodySize:       "1m",
			UpstreamKeepalive:   320,
			Settings:            DefaultSettings(),
		},
		SSLRedirect: true,
		LoadBalance: "round_robin",
	}
}

// parser checks one key's value and stores it in c. warnings are applied
// with a difference (each one an Entry); err rejects the value, whose
// setting keeps its default.
type parser struct {
	parse func(v string, c *Config) (warnings []string, err error)
	// fallback ends a rejection's detail: what is used instead.
	fallback string
}

// registry maps every key tidegate understands to its parser; groups add
// themselves from their own files.
var registry = map[string]parser{}

// register adds a key whose rejected value leaves the default.
func register(key string, set func(v string, c *Config) error) {
	registerFallback(key, "the default is used", set)
}

// registerFallback adds a key whose rejection says what is used instead.
func registerFallback(key, fallback string, set func(v string, c *Config) error) {
	registry[key] = parser{fallback: fallback, parse: func(v string, c *Config) ([]string, error) { return nil, set(v, c) }}
}

// unsupported are keys tidegate knows and refuses, with the reason.
var unsupported = map[string]string{}

// Parse reads the ConfigMap's data. Entries are sorted by key; a key that
// was applied as asked has none.
func Parse(data map[string]string) (Config, []Entry) {
	c := Default()
	var report []Entry
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := data[k]
		p, known := registry[k]
		switch {
		case known:
			warnings, err := p.parse(v, &c)
			if err != nil {
				report = append(report, Entry{Key: k, Value: v, Status: annotations.Rejected, Detail: err.Error() + "; " + p.fallback})
				continue
			}
			for _, w := range warnings {
				report = append(report, Entry{Key: k, Value: v, Status: annotations.Different, Detail: w})
			}
		case unsupported[k] != "":
			report = append(report, Entry{Key: k, Value: v, Status: annotations.Unsupported, Detail: unsupported[k]})
		default:
			report = append(report, Entry{Key: k, Value: v, Status: annotations.Unknown,
				Detail: "not a ConfigMap key tidegate knows (yet); it is ignored — check the spelling"})
		}
	}
	c.finish()
	return c, report
}

// finish applies rules that span keys, after every key was parsed.
func (c *Config) finish() {
	s := &c.Settings
	s.UseForwardedHeaders = c.useForwarded
	switch {
	case s.UseProxyProtocol:
		// As in ingress-nginx, the PROXY header names the client, not
		// X-Forwarded-For.
		s.RealIPHeader = "proxy_protocol"
		if len(s.RealIPFrom) == 0 {
			s.RealIPFrom = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
		}
	case c.useForwarded:
		s.RealIPHeader = "X-Forwarded-For"
	default:
		s.RealIPFrom = nil
	}
}

// Keys lists every ConfigMap key that has a parser, sorted.
func Keys() []string {
	out := make([]string, 0, len(registry))
	for k := range registry {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The value checks below keep the wording each key had: two idioms grew
// side by side (the first keys take the value as written, the later ones
// trim spaces), and tests and users read their messages.

// flag sets dst from "true" or "false" as written.
func flag(dst func(*Config) *bool) func(string, *Config) error {
	return func(v string, c *Config) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf(`value %q is not "true" or "false"`, v)
		}
		*dst(c) = b
		return nil
	}
}

// boolean sets dst from "true" or "false", spaces trimmed.
func boolean(dst func(*Config) *bool) func(string, *Config) error {
	return func(v string, c *Config) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf(`value %q is not "true" or "false"`, v)
		}
		*dst(c) = b
		return nil
	}
}

// number sets dst from a whole number in [lo, hi] (spaces trimmed; a
// trailing "s" is allowed, as for seconds); unit names what it counts.
func number(dst func(*Config) *int, lo, hi int, unit string) func(string, *Config) error {
	return func(v string, c *Config) error {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), "s"))
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("value %q is not %s from %d to %d", v, unit, lo, hi)
		}
		*dst(c) = n
		return nil
	}
}

// zeroOr is number, with "0" as well (nginx's or tidegate's automatic
// value).
func zeroOr(dst func(*Config) *int, lo, hi int) func(string, *Config) error {
	n := number(dst, lo, hi, "0 or a number")
	return func(v string, c *Config) error {
		if strings.TrimSpace(v) == "0" {
			*dst(c) = 0
			return nil
		}
		return n(v, c)
	}
}

// notA is the rejection of the first keys' idiom.
func notA(v, want string) error { return fmt.Errorf("value %q is not %s", v, want) }
