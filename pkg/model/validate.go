package model

import (
	"fmt"
	"strings"
)

// maxHostLen and maxPathLen bound what reaches nginx.conf.
const (
	maxHostLen = 253
	maxPathLen = 4096
)

// validateHost accepts a lower-case DNS-1123 subdomain, optionally prefixed
// by "*." (a one-label wildcard, as the Ingress spec defines it).
func validateHost(h string) error {
	if h == "" {
		return fmt.Errorf("host is empty")
	}
	if len(h) > maxHostLen {
		return fmt.Errorf("host is longer than %d characters", maxHostLen)
	}
	rest := h
	if strings.HasPrefix(h, "*.") {
		rest = h[2:]
	}
	labels := strings.Split(rest, ".")
	if len(labels) < 1 || (strings.HasPrefix(h, "*.") && len(labels) < 2) {
		return fmt.Errorf("host %q: a wildcard needs at least two labels after \"*.\"", h)
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("host %q: every label must be 1 to 63 characters", h)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(l)-1
			if !ok {
				return fmt.Errorf("host %q: only a-z, 0-9 and inner '-' are allowed in a label (an optional leading \"*.\" aside)", h)
			}
		}
	}
	return nil
}

// validatePath accepts an absolute URI path made only of the characters
// RFC 3986 allows in a path (percent-escapes well formed). Anything else –
// spaces, quotes, braces, backslashes, '#', control characters – is refused
// so that no path can change the meaning of nginx.conf.
func validatePath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("path %q must start with '/'", p)
	}
	if len(p) > maxPathLen {
		return fmt.Errorf("path is longer than %d characters", maxPathLen)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0:
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return fmt.Errorf("path %q has a '%%' not followed by two hex digits", p)
			}
		default:
			return fmt.Errorf("path %q contains %q, which is not allowed in a URI path", p, rune(c))
		}
	}
	return nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
