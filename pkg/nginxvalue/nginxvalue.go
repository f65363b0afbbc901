// Package nginxvalue is the syntax of nginx values that annotations, the
// ConfigMap, the model and the renderer all check: sizes, cipher lists,
// proxy_next_upstream conditions, TLS protocol names and CIDR lists.
// Written once here, it imports no tidegate package, so every layer can
// use it without an import running back up.
package nginxvalue

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

var sizeRe = regexp.MustCompile(`^[0-9]{1,9}[kKmMgG]?$`)

// Size reports whether v is an nginx size such as "8m", "512k" or "0"
// (client_max_body_size and the like).
func Size(v string) bool { return sizeRe.MatchString(v) }

var bufferSizeRe = regexp.MustCompile(`^([1-9][0-9]{0,4}[kK]|[1-9][0-9]?[mM])$`)

// BufferSize reports whether v is an nginx buffer size with a unit: 1k to
// 99999k or 1m to 99m (the ConfigMap's messages ask for 1k to 64m). A
// unit-less or larger value is a mistake nginx would accept and pay for
// per request.
func BufferSize(v string) bool { return bufferSizeRe.MatchString(v) }

var nextUpstream = map[string]bool{"error": true, "timeout": true, "invalid_header": true, "http_500": true,
	"http_502": true, "http_503": true, "http_504": true, "http_403": true, "http_404": true, "http_429": true,
	"non_idempotent": true, "off": true}

// NextUpstream reports whether c is a proxy_next_upstream condition.
func NextUpstream(c string) bool { return nextUpstream[c] }

var tlsProtocols = map[string]bool{"TLSv1": true, "TLSv1.1": true, "TLSv1.2": true, "TLSv1.3": true}

// TLSProtocol reports whether p is a protocol ssl_protocols and
// proxy_ssl_protocols take.
func TLSProtocol(p string) bool { return tlsProtocols[p] }

// Words splits a list value on white space and checks every word with ok.
// The first word ok refuses is named with the format bad (one %q), and an
// empty list is refused with the message empty.
func Words(v string, ok func(string) bool, bad, empty string) ([]string, error) {
	words := strings.Fields(v)
	for _, w := range words {
		if !ok(w) {
			return nil, fmt.Errorf(bad, w)
		}
	}
	if len(words) == 0 {
		return nil, errors.New(empty)
	}
	return words, nil
}

// CIDRs parses a comma-separated list of CIDRs and single addresses (a
// single address is its /32 or /128), masked. An empty list (empty
// elements are skipped) is no error here: whether it means "none" (the
// ConfigMap's block-cidrs) or is a mistake (an annotation's allow-list)
// is for the key to say.
func CIDRs(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not an IP address or CIDR", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

var secLevelRe = regexp.MustCompile(`^@SECLEVEL=[0-5]$`)

// CipherList accepts an OpenSSL cipher list made only of known cipher names
// and aliases (joined with '+', prefixed with '!', '-' or '+'), @STRENGTH
// and @SECLEVEL=n, and naming at least one cipher to use: anything else
// would fail nginx's SSL_CTX_set_cipher_list after the fact.
func CipherList(v string) error {
	if v == "" || len(v) > 2048 {
		return fmt.Errorf("an OpenSSL cipher list of 1 to 2048 characters is needed")
	}
	positive := false
	for _, el := range strings.Split(v, ":") {
		if el == "@STRENGTH" || secLevelRe.MatchString(el) {
			continue
		}
		neg := strings.HasPrefix(el, "!") || strings.HasPrefix(el, "-")
		body := strings.TrimLeft(el, "!-+")
		if body == "" {
			return fmt.Errorf("ssl-ciphers %q: empty element", v)
		}
		for _, name := range strings.Split(body, "+") {
			if !opensslCipherNames[name] {
				return fmt.Errorf("ssl-ciphers %q: %q is not an OpenSSL cipher name or alias", v, name)
			}
		}
		if !neg {
			positive = true
		}
	}
	if !positive {
		return fmt.Errorf("ssl-ciphers %q names no cipher to use", v)
	}
	return nil
}
