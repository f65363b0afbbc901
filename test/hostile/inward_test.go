package hostile

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tidegate/tidegate/pkg/confparse"
	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/nginx"
)

// The inward corpus (inward.txt): URL shapes that would make nginx connect
// to tidegate's control socket, its own ports, this machine or a metadata
// service. The oracle reads every place nginx.conf makes nginx connect
// (proxy_pass, grpc_pass, and the variables they read, set by "set") the
// way nginx's own URL parser does, independently of the code under test.

// machine is "this machine" for the inward tests: its address and the
// ports tidegate listens on.
var (
	machineAddr  = netip.MustParseAddr("192.0.2.2")
	machinePorts = []int{18080, 18443, 10254}
)

func policies() map[string]model.TargetPolicy {
	own := []netip.Addr{machineAddr}
	return map[string]model.TargetPolicy{
		"cluster": {OwnPorts: machinePorts, OwnAddrs: own},
		"local":   {AllowLoopback: true, OwnPorts: machinePorts, OwnAddrs: own},
	}
}

// nginxURL is a URL as ngx_parse_url reads it for proxy_pass.
type nginxURL struct {
	unix bool
	host string // lower case; "" for a unix socket
	addr netip.Addr
	port int
}

// parseNginxURL reads u as nginx does: "unix:" in any case is a socket
// path; the host ends at '/' or '?'; a host of four dot-separated decimal
// numbers of at most 255 is an IPv4 address, leading zeros and all
// (ngx_inet_addr); an IPv6 address is in brackets. ok is false for what is
// not an http(s) URL, or reads a variable in its host.
func parseNginxURL(u string) (nu nginxURL, ok bool) {
	lower := strings.ToLower(u)
	var rest string
	switch {
	case strings.HasPrefix(lower, "http://"):
		rest, nu.port = u[7:], 80
	case strings.HasPrefix(lower, "https://"):
		rest, nu.port = u[8:], 443
	case strings.HasPrefix(lower, "unix:"):
		return nginxURL{unix: true}, true
	default:
		return nu, false
	}
	if strings.HasPrefix(strings.ToLower(rest), "unix:") {
		return nginxURL{unix: true}, true
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	host := rest
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return nu, false
		}
		if p := host[end+1:]; strings.HasPrefix(p, ":") {
			nu.port, _ = strconv.Atoi(p[1:])
		}
		host = host[1:end]
		a, err := netip.ParseAddr(host)
		if err != nil {
			return nu, false
		}
		nu.addr, nu.host = a.Unmap(), host
		return nu, true
	}
	if h, p, found := strings.Cut(host, ":"); found {
		host = h
		nu.port, _ = strconv.Atoi(p)
	}
	if strings.Contains(host, "$") {
		return nu, false
	}
	nu.host = strings.ToLower(host)
	parts := strings.Split(host, ".")
	if len(parts) == 4 {
		var b [4]byte
		for i, part := range parts {
			n, err := strconv.Atoi(part)
			if err != nil || n > 255 || part == "" || strings.Trim(part, "0123456789") != "" {
				return nu, true
			}
			b[i] = byte(n)
		}
		nu.addr = netip.AddrFrom4(b)
	}
	return nu, true
}

// inward says why a target of nginx.conf points inward under p, or "".
func inward(u nginxURL, p model.TargetPolicy) string {
	name := strings.TrimSuffix(u.host, ".")
	loopName := name == "localhost" || strings.HasSuffix(name, ".localhost") || name == "localhost.localdomain" || name == "ip6-localhost" || name == "ip6-loopback"
	switch {
	case u.unix:
		return "a unix socket"
	case u.addr.IsValid() && (u.addr.IsUnspecified() || u.addr.IsLinkLocalUnicast() || u.addr.Is4() && u.addr.As4()[0] == 0):
		return "an unspecified or link-local address"
	case name == "metadata.google.internal" || u.addr == netip.MustParseAddr("fd00:ec2::254") || u.addr == netip.MustParseAddr("100.100.100.200"):
		return "a metadata service"
	case (loopName || u.addr.IsLoopback() || u.addr == machineAddr) && slices.Contains(p.OwnPorts, u.port):
		return "one of tidegate's own ports"
	case (loopName || u.addr.IsLoopback()) && !p.AllowLoopback:
		return "loopback"
	case strings.HasPrefix(name, "tidegate_") && name != "tidegate_upstream" && !strings.HasPrefix(name, "tidegate_upstream_"):
		return "an internal upstream name"
	}
	return ""
}

// inwardTargets lists the places in conf where nginx would connect inward.
func inwardTargets(conf string, p model.TargetPolicy) ([]string, error) {
	tree, err := confparse.Parse(conf)
	if err != nil {
		return nil, err
	}
	// The variables nginx proxies to: their "set" values are targets.
	proxied := map[string]bool{}
	confparse.Walk(tree, func(d confparse.Directive) {
		if (d.Name == "proxy_pass" || d.Name == "grpc_pass") && len(d.Args) == 1 && strings.HasPrefix(d.Args[0], "$") {
			proxied[d.Args[0]] = true
		}
	})
	var bad []string
	confparse.Walk(tree, func(d confparse.Directive) {
		var target string
		switch {
		case (d.Name == "proxy_pass" || d.Name == "grpc_pass") && len(d.Args) == 1:
			target = d.Args[0]
		case d.Name == "set" && len(d.Args) == 2 && proxied[d.Args[0]]:
			target = d.Args[1]
		default:
			return
		}
		if u, ok := parseNginxURL(target); ok {
			if why := inward(u, p); why != "" {
				bad = append(bad, fmt.Sprintf("%s %q connects to %s", d.Name, target, why))
			}
		}
	})
	return bad, nil
}

// TestInwardTargets tries every shape of inward.txt in every field of the
// hostile corpus (every annotation, snippets, ConfigMap keys, hosts, paths,
// names), alone and after the field's valid prefix, under the cluster and
// the local policy. Nothing may render a place nginx connects to inward.
func TestInwardTargets(t *testing.T) {
	set := nginx.Settings{WorkDir: t.TempDir(), HTTPPort: 18080, HTTPSPort: 18443}
	var shapes []string
	for _, s := range loadLines(t, "inward.txt") {
		shapes = append(shapes, strings.ReplaceAll(s, "SOCK", set.SocketPath()))
	}
	fs := fields()
	var cases, rendered int
	for pname, policy := range policies() {
		opts := model.DefaultOptions()
		opts.Targets = policy
		for _, f := range fs {
			// Loopback is allowed only by the local policy, and only
			// URL-taking keys can reach a place nginx connects to: the
			// cluster policy runs every field, the local one those.
			if pname == "local" && f.name != "annotation auth-url" && f.name != "annotation mirror-target" {
				continue
			}
			for i, shape := range shapes {
				for _, v := range []string{shape, f.prefix + shape} {
					cases++
					m := model.Build(fixture.Snapshot(f.build(v)...), opts)
					r, err := nginx.Render(m.Structure, set)
					if err != nil {
						continue
					}
					rendered++
					bad, err := inwardTargets(string(r.Conf), policy)
					if err != nil {
						t.Errorf("%s/%s/%d %q: nginx.conf does not parse: %v", pname, f.name, i, v, err)
					}
					for _, b := range bad {
						t.Errorf("%s/%s/%d %q: %s", pname, f.name, i, v, b)
					}
				}
			}
		}
	}
	t.Logf("inward corpus: %d shapes x %d fields x 2 x %d policies = %d cases, %d rendered", len(shapes), len(fs), len(policies()), cases, rendered)
}

// TestInwardOracle: the oracle itself sees what nginx would connect to.
func TestInwardOracle(t *testing.T) {
	cluster := policies()["cluster"]
	for target, want := range map[string]bool{
		"http://unix:/w/run/tidegate.sock:/configuration/backends": true,
		"http://UNIX:/x":             true,
		"http://0127.0.0.1/":         true,
		"http://127.000.000.001:99/": true,
		"http://[::ffff:127.0.0.1]/": true,
		"http://LocalHost/":          true,
		"http://192.0.2.2:10254/":    true,
		"http://192.0.2.2:4180/":     false,
		"http://169.254.169.254/":    true,
		"http://auth.io/check":       false,
		"http://tidegate_upstream":   false,
		"https://$host/oauth2":       false,
		"http://10.0.0.1:8080/":      false,
	} {
		u, ok := parseNginxURL(target)
		if got := ok && inward(u, cluster) != ""; got != want {
			t.Errorf("%s: inward = %v, want %v", target, got, want)
		}
	}
}
