package annotations

import (
	"fmt"
	"regexp/syntax"
	"strings"
)

// AuthTLS is client certificate authentication (auth-tls-*), a setting of
// the whole host: the oldest Ingress of a host that sets auth-tls-secret
// decides it for every path of the host, as in ingress-nginx.
type AuthTLS struct {
	// Secret is "name" (the Ingress's namespace) or "namespace/name"; its
	// ca.crt holds the CA certificates client certificates must chain to,
	// its optional ca.crl a revocation list.
	Secret string
	// Verify is nginx's ssl_verify_client: on (the default), optional,
	// optional_no_ca or off.
	Verify string
	// Depth is ssl_verify_depth (1 by default: the client certificate is
	// signed by a CA of ca.crt).
	Depth int
	// PassCertificate sends the client certificate (URL-encoded PEM) to the
	// backend in the ssl-client-cert header.
	PassCertificate bool
	// ErrorPage is where a client with a missing or bad certificate is
	// redirected to, instead of a 400.
	ErrorPage string
	// MatchCN is a regex the certificate's subject DN must match
	// ("CN=admin"); others get 403.
	MatchCN string
}

// DefaultVerifyDepth is ingress-nginx's auth-tls-verify-depth default.
const DefaultVerifyDepth = 1

var verifyModes = map[string]bool{"on": true, "off": true, "optional": true, "optional_no_ca": true}

func init() {
	register("auth-tls-secret", applied(func(v string, c *Config) error {
		if err := secretRef(v); err != nil {
			return err
		}
		c.AuthTLS.Secret = v
		return nil
	}))
	register("auth-tls-verify-client", applied(func(v string, c *Config) error {
		v = strings.ToLower(strings.TrimSpace(v))
		if !verifyModes[v] {
			return fmt.Errorf("%q is not on, off, optional or optional_no_ca", v)
		}
		c.AuthTLS.Verify = v
		return nil
	}))
	register("auth-tls-verify-depth", applied(func(v string, c *Config) error {
		n, err := intRange(v, 1, 100)
		c.AuthTLS.Depth = n
		return err
	}))
	register("auth-tls-pass-certificate-to-upstream", applied(func(v string, c *Config) error {
		b, err := boolValue(v)
		c.AuthTLS.PassCertificate = b
		return err
	}))
	register("auth-tls-error-page", applied(func(v string, c *Config) error {
		v = strings.TrimSpace(v)
		if err := redirectURL(v); err != nil {
			return err
		}
		if strings.Contains(v, "$") {
			return fmt.Errorf("%q: the error page may not read variables", v)
		}
		c.AuthTLS.ErrorPage = v
		return nil
	}))
	register("auth-tls-match-cn", applied(func(v string, c *Config) error {
		if err := validPCRE(v); err != nil {
			return fmt.Errorf("subject pattern %w", err)
		}
		c.AuthTLS.MatchCN = v
		return nil
	}))
}

// secretRef accepts "name" or "namespace/name" of a Secret.
func secretRef(v string) error {
	_, err := objectRef(v, "Secret") // headers.go
	return err
}

// validPCRE reports whether p is safe to give to nginx as a regex outside a
// location (an `if` condition): printable ASCII without quotes, ';' or
// '#', accepted by Go's RE2 parser with Perl syntax (a subset of
// PCRE, so nginx compiles it too), ASCII only, and without catastrophic
// backtracking.
func validPCRE(p string) error {
	if p == "" || len(p) > MaxRegexLen {
		return fmt.Errorf("must be 1 to %d characters", MaxRegexLen)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c >= 0x7f || strings.IndexByte("\"'`;#", c) >= 0 {
			return fmt.Errorf("%q contains %q, which is not allowed", p, rune(c))
		}
	}
	re, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return fmt.Errorf("%q does not compile: %v (look-arounds and back-references are not supported)", p, err)
	}
	if nonASCII(re) {
		return fmt.Errorf("%q matches characters outside ASCII, which nginx's PCRE would refuse", p)
	}
	return Backtracking(p)
}

// Backtracking refuses a regex that nginx's PCRE (or Lua's ngx.re) would
// match in exponentially many ways (backtrack): one request could then hold
// a worker, which serves every host, for most of a second. A regex RE2
// cannot parse (PCRE-only syntax) is not judged here.
func Backtracking(p string) error {
	re, err := syntax.Parse(p, syntax.Perl)
	if err == nil && backtrack(re, false) {
		return fmt.Errorf("%q repeats a group that itself repeats or alternates (as in (a+)+ or (a|ab)*): PCRE backtracks through every way to match it and one request could hold an nginx worker for a second; repeat single characters or classes instead", p)
	}
	return nil
}
