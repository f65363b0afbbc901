package annotations

import (
	"fmt"
	"strconv"
)

// Canary is what the canary-* annotations ask for: an Ingress with canary:
// "true" adds no location, its backends become canaries of the backends
// serving the same host and path, with these rules (ingress-nginx's order:
// header, cookie, weight). Pushed to Lua: the model takes it out of Config,
// so changing the rules does not reload nginx.
type Canary struct {
	// Enabled is canary: "true".
	Enabled bool
	// Header is canary-by-header; HeaderValue and HeaderPattern (PCRE, used
	// only without a value) are set only with a Header.
	Header, HeaderValue, HeaderPattern string
	// Cookie is canary-by-cookie.
	Cookie string
	// Weight of WeightTotal (100 by default) requests go to the canary.
	Weight, WeightTotal int
	// Invalid are the values refused, in the order they are read.
	Invalid []Invalid
}

// parseCanary reads the canary keys.
func parseCanary(d dataPlane) Canary {
	c := Canary{WeightTotal: 100}
	bad := func(key, value, want string) {
		c.Invalid = append(c.Invalid, Invalid{Key: key, Value: value, Want: want})
	}
	v, _ := d.get("canary")
	b, err := strconv.ParseBool(v)
	c.Enabled = err == nil && b
	if v, _ := d.get("canary-by-header"); v != "" {
		if cookieToken.MatchString(v) {
			c.Header = v
		} else {
			bad("canary-by-header", v, "an HTTP header name")
		}
	}
	if v := d["canary-by-header-value"]; v != "" && c.Header != "" {
		if printable(v) {
			c.HeaderValue = v
		} else {
			bad("canary-by-header-value", v, "printable ASCII")
		}
	}
	// ingress-nginx: the pattern is only used without a value. It is a PCRE
	// regex, so RE2 cannot judge every one here; one that PCRE refuses
	// never matches, and nginx's error log says so. One RE2 reads is
	// refused if PCRE would backtrack through it exponentially: Lua
	// matches it against a header the client chooses.
	if v := d["canary-by-header-pattern"]; v != "" && c.Header != "" && c.HeaderValue == "" {
		if !printable(v) || len(v) > 1024 {
			bad("canary-by-header-pattern", v, "printable ASCII of at most 1024 bytes")
		} else if err := Backtracking(v); err != nil {
			bad("canary-by-header-pattern", v, "a pattern without nested repetition ("+err.Error()+")")
		} else {
			c.HeaderPattern = v
		}
	}
	if v, _ := d.get("canary-by-cookie"); v != "" {
		if cookieToken.MatchString(v) {
			c.Cookie = v
		} else {
			bad("canary-by-cookie", v, "a cookie name")
		}
	}
	if v, _ := d.get("canary-weight-total"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 1 && n <= 1000000 {
			c.WeightTotal = n
		} else {
			bad("canary-weight-total", v, "a number from 1 to 1000000")
		}
	}
	if v, _ := d.get("canary-weight"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 && n <= c.WeightTotal {
			c.Weight = n
		} else {
			bad("canary-weight", v, fmt.Sprintf("a number from 0 to canary-weight-total (%d)", c.WeightTotal))
		}
	}
	return c
}

// printable reports whether s is printable ASCII of at most 1024 bytes.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return len(s) <= 1024
}
