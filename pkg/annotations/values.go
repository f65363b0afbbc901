package annotations

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tidegate/tidegate/pkg/nginxvalue"
)

// boolValue parses "true"/"false" as ingress-nginx does.
func boolValue(v string) (bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, fmt.Errorf("%q is not true or false", v)
	}
	return b, nil
}

// seconds parses a timeout in seconds ("60" or "60s"), 1..86400.
func seconds(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), "s"))
	if err != nil || n < 0 || n > 86400 {
		return 0, fmt.Errorf("%q is not a number of seconds from 0 to 86400", v)
	}
	return n, nil
}

// intRange parses an integer in [lo, hi].
func intRange(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q is not a whole number from %d to %d", v, lo, hi)
	}
	return n, nil
}

// Size is an nginx size such as "8m"; "0" disables a limit.
type Size string

func size(v string) (Size, error) {
	v = strings.TrimSpace(v)
	if !nginxvalue.Size(v) {
		return "", fmt.Errorf("%q is not a size such as 512k, 8m or 1g", v)
	}
	return Size(strings.ToLower(v)), nil
}

// cidrs parses a comma-separated list of IPs and CIDRs, at least one: an
// empty allow- or deny-list is a mistake to report, not "nobody" or
// "everybody".
func cidrs(v string) ([]netip.Prefix, error) {
	out, err := nginxvalue.CIDRs(v)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no address given")
	}
	return out, nil
}

// headerName accepts an HTTP token (RFC 9110) as a header name.
func headerName(v string) error {
	if v == "" || len(v) > 256 {
		return fmt.Errorf("header name %q must be 1 to 256 characters", v)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#%&'*+-.^_`|~", c) >= 0) {
			return fmt.Errorf("header name %q contains %q", v, rune(c))
		}
	}
	return nil
}

// safeText accepts printable ASCII without '$' (nginx would expand it as a
// variable), '"' and '\': header values, realms, and the like.
func safeText(v string) error {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c > 0x7e || c == '$' || c == '"' || c == '\\' {
			return fmt.Errorf("%q contains %q; only printable ASCII without '$', '\"' and '\\' is allowed", v, rune(c))
		}
	}
	return nil
}
