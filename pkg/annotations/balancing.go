package annotations

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/tidegate/tidegate/pkg/nginxvalue"
)

// Balancing is how the backends of an Ingress balance: load-balance,
// upstream-hash-by, affinity, affinity-mode and session-cookie-*. These keys
// change what is pushed to Lua, never nginx.conf (except upstream-hash-by,
// whose expression the location evaluates): the model takes them out of
// Config into its backends, so changing them does not reload nginx. A
// backend is shared by every Ingress naming its Service port, so the model
// reports Invalid only for the Ingress whose settings the backend takes.
type Balancing struct {
	// Algorithm is load-balance (round_robin or ewma); empty when not set
	// or invalid: the ConfigMap's load-balance applies.
	Algorithm string
	// HashBy is upstream-hash-by, an nginx expression of variables
	// ("$request_uri"); when set it wins over Algorithm (consistent
	// hashing).
	HashBy string
	// Affinity is nil without affinity: cookie.
	Affinity *Affinity
	// Invalid are the values refused, in the order they are read.
	Invalid []Invalid
}

// Affinity is sticky sessions by cookie (affinity: cookie), with
// ingress-nginx's defaults: mode balanced, cookie INGRESSCOOKIE.
type Affinity struct {
	// Mode is "balanced" or "persistent".
	Mode string
	// Name is the cookie name; Path, Domain and SameSite ("None", "Lax",
	// "Strict") its attributes, empty when not set.
	Name, Path, Domain, SameSite string
	// Secure and ChangeOnFailure are session-cookie-secure and
	// session-cookie-change-on-failure.
	Secure, ChangeOnFailure bool
	// MaxAge and Expires are seconds; 0 when not set.
	MaxAge, Expires int
}

// Invalid is a data-plane annotation value that was refused: the setting
// keeps its default, as in ingress-nginx. The compatibility report lists
// the key as applied by the data plane; the model reports Invalid where the
// setting applies.
type Invalid struct {
	// Key is the annotation without Prefix.
	Key   string
	Value string
	// Want says what the value should be ("round_robin or ewma").
	Want string
}

var (
	// hashExpr is an nginx string of variables ($x, ${x}) and plain
	// characters: nothing that could end the directive or open a block.
	hashExpr    = regexp.MustCompile(`^(\$[A-Za-z_][A-Za-z0-9_]*|\$\{[A-Za-z_][A-Za-z0-9_]*\}|[-A-Za-z0-9_./:@|])+$`)
	cookieToken = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
	cookiePath  = regexp.MustCompile(`^/[!-+\--:<-~]{0,255}$`) // printable, no ';' ','
	cookieDom   = regexp.MustCompile(`^\.?[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)
)

// dataPlaneKeys are the balancing and canary keys (canary.go). Their
// values are kept as given (dataPlane) and judged once every key is read:
// one depends on another (canary-weight on canary-weight-total, the cookie
// attributes on affinity). They are reported as applied by the data plane
// whatever their value; a refused one is in Balancing or Canary.Invalid.
var dataPlaneKeys = []string{
	"load-balance", "upstream-hash-by",
	"affinity", "affinity-mode", "session-cookie-name", "session-cookie-path",
	"session-cookie-domain", "session-cookie-samesite", "session-cookie-secure",
	"session-cookie-max-age", "session-cookie-expires", "session-cookie-change-on-failure",
	"canary", "canary-by-header", "canary-by-header-value", "canary-by-header-pattern", "canary-by-cookie",
	"canary-weight", "canary-weight-total",
}

func init() {
	for _, k := range dataPlaneKeys {
		registry[k] = parser{dataPlane: true, parse: func(string, *Config) (Status, string, error) {
			return Applied, "applied by the data plane (pushed to Lua, no reload)", nil
		}}
	}
	unsupported["upstream-hash-by-subset"] = "hash subsets are not implemented; upstream-hash-by applies to all endpoints"
	unsupported["upstream-hash-by-subset-size"] = "hash subsets are not implemented"
	unsupported["affinity-canary-behavior"] = "a sticky client always stays off the canary (ingress-nginx's default \"sticky\" behaviour)"
	unsupported["session-cookie-conditional-samesite-none"] = "not implemented; set session-cookie-samesite explicitly"
}

// dataPlane holds the values of dataPlaneKeys while Parse reads an Ingress.
type dataPlane map[string]string

// get returns the value of key, trimmed, and whether it is set.
func (d dataPlane) get(key string) (string, bool) {
	v, ok := d[key]
	return strings.TrimSpace(v), ok
}

// parseBalancing reads the balancing keys. As in ingress-nginx,
// upstream-hash-by wins over load-balance, and sticky sessions take
// precedence over both for requests that carry the cookie.
func parseBalancing(d dataPlane) Balancing {
	var out Balancing
	bad := func(key, value, want string) {
		out.Invalid = append(out.Invalid, Invalid{Key: key, Value: value, Want: want})
	}
	if v, ok := d.get("load-balance"); ok {
		if v == "round_robin" || v == "ewma" {
			out.Algorithm = v
		} else {
			bad("load-balance", v, "round_robin or ewma")
		}
	}
	if v, ok := d.get("upstream-hash-by"); ok && v != "" {
		if hashExpr.MatchString(v) && len(v) <= 256 {
			if err := nginxvalue.ValidLogFormat(v); err != nil {
				// Same variable rule as log formats: an unknown variable
				// would fail nginx -t for every host.
				bad("upstream-hash-by", v, "an expression of known nginx variables such as $request_uri or $http_x_user")
			} else {
				out.HashBy = v
			}
		} else {
			bad("upstream-hash-by", v, "an nginx variable expression such as $request_uri or $http_x_user")
		}
	}
	v, ok := d.get("affinity")
	if !ok || v == "" {
		return out
	}
	if v != "cookie" {
		bad("affinity", v, `"cookie"`)
		return out
	}
	a := &Affinity{Mode: "balanced", Name: "INGRESSCOOKIE"}
	if v, ok := d.get("affinity-mode"); ok {
		switch v {
		case "balanced", "persistent":
			a.Mode = v
		default:
			bad("affinity-mode", v, "balanced or persistent")
		}
	}
	const cookie = "session-cookie-"
	str := func(key string, re *regexp.Regexp, want string, dst *string) {
		if v, ok := d.get(cookie + key); ok && v != "" {
			if re.MatchString(v) {
				*dst = v
			} else {
				bad(cookie+key, v, want)
			}
		}
	}
	str("name", cookieToken, "a cookie name (letters, digits and !#$%&'*+.^_`|~-, at most 64)", &a.Name)
	str("path", cookiePath, "a path starting with / without ';' or ','", &a.Path)
	str("domain", cookieDom, "a domain name", &a.Domain)
	if v, ok := d.get(cookie + "samesite"); ok && v != "" {
		switch strings.ToLower(v) {
		case "none":
			a.SameSite = "None"
		case "lax":
			a.SameSite = "Lax"
		case "strict":
			a.SameSite = "Strict"
		default:
			bad(cookie+"samesite", v, "None, Lax or Strict")
		}
	}
	boolean := func(key string, dst *bool) {
		if v, ok := d.get(cookie + key); ok && v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad(cookie+key, v, `"true" or "false"`)
				return
			}
			*dst = b
		}
	}
	boolean("secure", &a.Secure)
	boolean("change-on-failure", &a.ChangeOnFailure)
	seconds := func(key string, dst *int) {
		if v, ok := d.get(cookie + key); ok && v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1<<31-1 {
				bad(cookie+key, v, "a number of seconds")
				return
			}
			*dst = n
		}
	}
	seconds("max-age", &a.MaxAge)
	seconds("expires", &a.Expires)
	out.Affinity = a
	return out
}
