package annotations

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Target is where nginx itself connects for a URL an Ingress gives
// (auth-url, mirror-target): the host and port of an absolute http(s) URL,
// as nginx will read them.
//
// Every such URL is proxied through a variable, and nginx's URL parser
// takes more than a host name there: "unix:/path:" connects to a unix
// socket (tidegate's control socket is one), a digits-and-dots host is an
// IPv4 address even with leading zeros ("0127.0.0.1"), and an address may
// be a loopback, link-local or unspecified one. ParseTarget refuses what
// no Ingress may ever point nginx at; the model then applies the rules that
// depend on where tidegate runs (loopback, tidegate's own ports:
// model.Options.Targets).
type Target struct {
	// Host is the host as nginx will look it up: lower case, without a
	// trailing dot or brackets. "$host" when the URL reads the request's.
	Host string
	// Addr is Host as an address when it is an IP literal.
	Addr netip.Addr
	// Port is the port nginx connects to: the URL's, else 80 or 443.
	Port int
	// Loopback is this machine: a loopback address (IPv4, IPv6 or
	// IPv4-mapped) or a name that means one ("localhost", "*.localhost").
	Loopback bool
}

// loopbackNames are names that mean this machine wherever they are looked
// up (RFC 6761 reserves localhost and its subdomains; the others are the
// usual /etc/hosts aliases a resolver may answer too).
var loopbackNames = map[string]bool{"localhost": true, "localhost.localdomain": true, "ip6-localhost": true, "ip6-loopback": true}

// metadataAddrs are the cloud metadata services that are not link-local
// (AWS over IPv6, Alibaba Cloud); metadataNames the one that is a name
// (GCP's, which resolves to 169.254.169.254).
var (
	metadataAddrs = map[netip.Addr]bool{netip.MustParseAddr("fd00:ec2::254"): true, netip.MustParseAddr("100.100.100.200"): true}
	metadataNames = map[string]bool{"metadata.google.internal": true}
)

// ParseTarget checks the host of an absolute http:// or https:// URL that
// nginx will connect to and returns it. It refuses unix sockets, hosts
// nginx would read other than as written (percent-encoding, numeric forms
// other than a canonical IPv4 or IPv6 address, zones), and addresses that
// are never a service: unspecified (0.0.0.0 reaches this machine),
// link-local (169.254.169.254 is the cloud metadata service), multicast,
// and the other cloud metadata services.
func ParseTarget(url string) (Target, error) {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return Target{}, fmt.Errorf("%q is not an absolute http:// or https:// URL", url)
	}
	// nginx reads "unix:" in any case as a unix socket path.
	if len(rest) >= 5 && strings.EqualFold(rest[:5], "unix:") {
		return Target{}, fmt.Errorf("%q names a unix socket; nginx may only connect to a host name or an IP address here", url)
	}
	if strings.HasPrefix(rest, "$host") {
		return Target{Host: "$host", Port: defaultPort(scheme)}, nil
	}
	hostport := rest
	if i := strings.IndexAny(rest, "/?$#"); i >= 0 {
		hostport = rest[:i]
	}
	if strings.ContainsAny(hostport, "%@\\") {
		return Target{}, fmt.Errorf("%q: the host may not hold '%%', '@' or '\\'", url)
	}
	host, port := hostport, ""
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return Target{}, fmt.Errorf("%q: unclosed '[' in the host", url)
		}
		host, port = host[1:end], host[end+1:]
		if port != "" && port[0] != ':' {
			return Target{}, fmt.Errorf("%q: after ']' comes ':' and a port", url)
		}
		port = strings.TrimPrefix(port, ":")
		if port == "" && strings.HasSuffix(hostport, ":") {
			return Target{}, fmt.Errorf("%q: empty port", url)
		}
	} else if h, p, found := strings.Cut(host, ":"); found {
		host, port = h, p
		if port == "" {
			return Target{}, fmt.Errorf("%q: empty port after the host", url)
		}
	}
	t := Target{Port: defaultPort(scheme)}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' || port[0] == '+' {
			return Target{}, fmt.Errorf("%q: port %q is not 1 to 65535", url, port)
		}
		t.Port = n
	}
	if host == "" {
		return Target{}, fmt.Errorf("%q has no host", url)
	}
	if strings.HasPrefix(hostport, "[") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return Target{}, fmt.Errorf("%q: %q is not an IPv6 address (without a zone)", url, host)
		}
		t.Host, t.Addr, t.Loopback = a.String(), a, a.Unmap().IsLoopback()
		return t, addrAllowed(url, t)
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
		t.Host, t.Addr, t.Loopback = a.String(), a, a.IsLoopback()
		return t, addrAllowed(url, t)
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || l[0] == '-' || l[len(l)-1] == '-' {
			return Target{}, fmt.Errorf("%q: %q is not a DNS name or an IP address", url, host)
		}
	}
	// nginx reads a host of digits and dots as an IPv4 address (leading
	// zeros and all), and no DNS name ends in a numeric label.
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" {
		return Target{}, fmt.Errorf("%q: %q is neither a DNS name nor an IPv4 address written a.b.c.d", url, host)
	}
	if len(name) > 253 {
		return Target{}, fmt.Errorf("%q: the host name is longer than 253 characters", url)
	}
	if metadataNames[name] {
		return Target{}, fmt.Errorf("%q is a cloud metadata service", url)
	}
	t.Host = name
	t.Loopback = loopbackNames[name] || strings.HasSuffix(name, ".localhost")
	return t, nil
}

func defaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

// addrAllowed refuses the addresses no Ingress may point nginx at, and
// marks loopback ones.
func addrAllowed(url string, t Target) error {
	a := t.Addr.Unmap()
	switch {
	case a.IsUnspecified():
		return fmt.Errorf("%q: %s is the unspecified address (it reaches this machine); name the service", url, t.Host)
	case a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast():
		return fmt.Errorf("%q: %s is link-local (the cloud metadata service lives there); name the service", url, t.Host)
	case a.IsMulticast() || a.IsInterfaceLocalMulticast():
		return fmt.Errorf("%q: %s is a multicast address", url, t.Host)
	case metadataAddrs[a]:
		return fmt.Errorf("%q: %s is a cloud metadata service", url, t.Host)
	case a.Is4() && a.As4()[0] == 0:
		return fmt.Errorf("%q: %s is in 0.0.0.0/8 (\"this network\"); name the service", url, t.Host)
	}
	return nil
}
