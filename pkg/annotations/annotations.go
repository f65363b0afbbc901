// Package annotations parses the nginx.ingress.kubernetes.io/* annotations
// ingress-nginx users already have into typed settings. One file per group;
// each parser validates its values and says, per key, whether it was
// applied, applied with a difference from ingress-nginx, ignored as
// unsupported, or rejected (and why). Nothing here produces nginx text: the
// renderer turns the typed values into directives.
package annotations

import (
	"fmt"
	"sort"
	"strings"
)

// Prefix is the annotation prefix ingress-nginx uses.
const Prefix = "nginx.ingress.kubernetes.io/"

// Status is what became of one annotation.
type Status string

// The statuses of the compatibility report.
const (
	Applied     Status = "applied"
	Different   Status = "applied-with-difference"
	Unsupported Status = "ignored-unsupported"
	Rejected    Status = "rejected"
	Unknown     Status = "unknown"
)

// Entry is one line of the compatibility report.
type Entry struct {
	// Key is the annotation name without the prefix.
	Key    string
	Value  string
	Status Status
	// Detail says what differs, why it is unsupported, or what to change.
	Detail string
}

// Config is everything the annotations of one Ingress set for its locations.
// Zero values mean "not set": the global setting applies.
type Config struct {
	Redirect  Redirect
	Proxy     Proxy
	Rewrite   Rewrite
	Access    Access
	CORS      CORS
	RateLimit RateLimit
	Auth      Auth
	AuthTLS   AuthTLS
	Server    Server
	// Headers, Upstream and Snippets: headers.go, upstream.go, snippets.go.
	Headers  CustomHeaders
	Upstream Upstream
	Snippets Snippets
	ExtAuth  ExtAuth
	Mirror   Mirror
	ProxySSL ProxySSL
	Errors   Errors
	// Balancing and Canary (balancing.go, canary.go) are pushed to Lua,
	// never rendered: the model moves them into its backends.
	Balancing Balancing
	Canary    Canary
	// AccessLogOff leaves the location's requests out of the access log
	// (enable-access-log: "false"); the request metrics still count them.
	AccessLogOff bool

	// dataPlane holds the values of the balancing and canary keys until
	// finish judges them.
	dataPlane dataPlane
}

// parser handles one key of a group.
type parser struct {
	// parse validates value and stores it in cfg. It returns the status
	// (Applied or Different) and a detail, or an error for a rejection.
	parse func(value string, cfg *Config) (Status, string, error)
	// dataPlane keys (balancing.go) keep their value as given, even one
	// checkValue refuses: parseBalancing and parseCanary judge it.
	dataPlane bool
}

// registry maps every key tidegate understands to its parser; groups add
// themselves from their own files.
var registry = map[string]parser{}

func register(key string, f func(value string, cfg *Config) (Status, string, error)) {
	registry[key] = parser{parse: f}
}

// applied wraps a setter that cannot differ from ingress-nginx.
func applied(set func(value string, cfg *Config) error) func(string, *Config) (Status, string, error) {
	return func(v string, c *Config) (Status, string, error) {
		if err := set(v, c); err != nil {
			return "", "", err
		}
		return Applied, "", nil
	}
}

// maxValueLen bounds any annotation value.
const maxValueLen = 4096

// Parse reads every nginx.ingress.kubernetes.io/* annotation of an Ingress.
// A rejected value leaves its setting unset (the global one applies) and is
// reported; the rest still apply. Entries are sorted by key.
func Parse(anns map[string]string) (Config, []Entry) {
	var cfg Config
	var report []Entry
	keys := make([]string, 0, len(anns))
	for k := range anns {
		if strings.HasPrefix(k, Prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, full := range keys {
		key, value := strings.TrimPrefix(full, Prefix), anns[full]
		e := Entry{Key: key, Value: value}
		switch p, known := registry[key]; {
		case known:
			if p.dataPlane {
				if cfg.dataPlane == nil {
					cfg.dataPlane = dataPlane{}
				}
				cfg.dataPlane[key] = value
			}
			if err := checkValue(snippetText(key, value)); err != nil {
				e.Status, e.Detail = Rejected, err.Error()
				break
			}
			st, detail, err := p.parse(value, &cfg)
			if err != nil {
				e.Status, e.Detail = Rejected, err.Error()
			} else {
				e.Status, e.Detail = st, detail
			}
		default:
			if why, ok := unsupported[key]; ok {
				e.Status, e.Detail = Unsupported, why
			} else {
				e.Status, e.Detail = Unknown, "not an ingress-nginx annotation tidegate knows; check the spelling"
			}
		}
		report = append(report, e)
	}
	cfg.finish(&report)
	return cfg, report
}

// checkValue refuses what no annotation may contain.
func checkValue(v string) error {
	if len(v) > maxValueLen {
		return fmt.Errorf("value is longer than %d characters", maxValueLen)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return fmt.Errorf("value contains a control character (0x%02x); remove it", c)
		}
	}
	return nil
}

// finish applies rules that span keys (e.g. rewrite-target implies
// use-regex) and the defaults of what is enabled after every key was
// parsed.
func (c *Config) finish(report *[]Entry) {
	if c.Rewrite.Target != "" {
		c.Rewrite.UseRegex = true
	}
	if c.RateLimit.active() && c.RateLimit.BurstMultiplier == 0 {
		c.RateLimit.BurstMultiplier = 5
	}
	if c.CORS.Enabled {
		c.CORS = c.CORS.withDefaults()
	}
	if c.Auth.Basic && c.Auth.Realm == "" {
		c.Auth.Realm = DefaultRealm
	}
	c.ExtAuth.finish(report)
	c.Balancing, c.Canary = parseBalancing(c.dataPlane), parseCanary(c.dataPlane)
	c.dataPlane = nil
}

// Different marks entries whose key was applied but behaves differently.
func reject(format string, args ...any) error { return fmt.Errorf(format, args...) }

// Keys lists every annotation key (without prefix) that has a parser, sorted.
func Keys() []string {
	out := make([]string, 0, len(registry))
	for k := range registry {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
