package nginx

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/tidegate/tidegate/pkg/annotations"
)

// Request mirroring (mirror-target) uses nginx's mirror module: each
// request of the location also goes, as a subrequest whose answer is
// dropped, to an internal location of the server that proxies it to the
// target. The target is proxied through a variable and resolved per
// request, as an auth-url is (extauth.go).

// mirrorLines makes a location mirror its requests and registers the
// internal location that sends the copies.
func mirrorLines(m annotations.Mirror, v *view, add func(string, ...any)) error {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%q|%q|%v", m.Target, m.Host, m.NoBody)))
	uri := "/_tidegate_mirror_" + hex.EncodeToString(sum[:6])
	target, err := Quote(m.Target)
	if err != nil {
		return fmt.Errorf("mirror-target: %w", err)
	}
	host := "$proxy_host" // the target's host and port, as nginx would send it
	if m.Host != "" {
		if host, err = QuoteVarFree(m.Host); err != nil {
			return fmt.Errorf("mirror-host: %w", err)
		}
	}
	var lines []string
	in := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	in("internal;")
	resolverLines(v, in)
	hostGuard(m.Target, in)
	// Setting Host drops every inherited proxy_set_header: the copy gets
	// the forwarding headers of the original again.
	in("proxy_set_header Host %s;", host)
	for _, h := range v.proxyHeaders {
		if h[0] != "Host" {
			in("proxy_set_header %s %s;", h[0], h[1])
		}
	}
	in("proxy_set_header X-Original-URI $request_uri;")
	if m.NoBody {
		in("proxy_pass_request_body off;")
		in(`proxy_set_header Content-Length "";`)
	}
	in("proxy_ssl_server_name on;")
	in("set $tidegate_mirror_url %s;", target)
	in("proxy_pass $tidegate_mirror_url;")
	v.extraLocation("= ", uri, lines)
	add("mirror %s;", uri)
	add("mirror_request_body %s;", map[bool]string{false: "on", true: "off"}[m.NoBody])
	return nil
}

// resolverLines resolve the host names of proxy_pass targets read from a
// variable, with the controller's name servers (Settings.Resolvers).
func resolverLines(v *view, add func(string, ...any)) {
	if len(v.resolvers) > 0 {
		add("resolver %s valid=30s;", strings.Join(v.resolvers, " "))
		add("resolver_timeout 5s;")
	}
}

// hostGuard refuses a client-chosen Host when the target URL's host is
// $host (on a wildcard or catch-all server the client picks it): only a
// DNS name whose last label holds a letter passes. An IP address
// ("127.0.0.1", "169.254.169.254") or a loopback name would point nginx at
// this machine or its metadata service, and proxy_pass with a variable
// looks the host up among the upstream blocks first: a Host such as
// "tidegate_upstream" would send the request to the application itself.
func hostGuard(url string, add func(string, ...any)) {
	if strings.Contains(strings.SplitN(url, "/", 4)[2], "$host") {
		add(`if ($host !~ "%s") {`, hostGuardRegex)
		add("    return 500;")
		add("}")
	}
}

// hostGuardRegex matches the Hosts hostGuard lets through ($host is lower
// case, without a port or a trailing dot).
const hostGuardRegex = `^(?!((.*\.)?localhost|localhost\.localdomain|ip6-localhost|ip6-loopback)$)([a-z0-9-]+\.)*[a-z0-9-]*[a-z][a-z0-9-]*$`
