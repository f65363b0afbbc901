package model

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tidegate/tidegate/pkg/nginxvalue"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// globalSettings are the parsed ConfigMap keys.
type globalSettings struct {
	Global
	SSLRedirect bool
	// ForceSSLRedirect redirects plain HTTP to https on every host, TLS
	// section or not (force-ssl-redirect; the annotation overrides it).
	ForceSSLRedirect bool
	// snippets are allow-snippet-annotations and
	// global-allowed-response-headers (snippets.go, headers.go).
	snippets snippetSettings
}

// parseGlobal reads the controller ConfigMap. Unknown or invalid keys are
// reported and the default is kept.
func parseGlobal(snap *snapshot.Snapshot, opts Options, report func(Problem)) globalSettings {
	g := globalSettings{
		Global: Global{
			WorkerProcesses:     "auto",
			ProxyConnectTimeout: 5,
			ProxyReadTimeout:    60,
			ProxySendTimeout:    60,
			ProxyBodySize:       "1m",
			UpstreamKeepalive:   320,
			Settings:            DefaultSettings(),
		},
		SSLRedirect: true,
	}
	ns, name, ok := strings.Cut(opts.ConfigMap, "/")
	if !ok {
		return g
	}
	cm := snap.ConfigMap(ns, name)
	if cm == nil {
		return g
	}
	bad := func(k, v, want string) {
		report(Problem{Kind: "ConfigMap", Object: opts.ConfigMap, Field: "data." + k,
			Reason: fmt.Sprintf("value %q is not %s; the default is used", v, want)})
	}
	seconds := func(k, v string, dst *int) {
		n, err := strconv.Atoi(strings.TrimSuffix(v, "s"))
		if err != nil || n < 1 || n > 86400 {
			bad(k, v, "a number of seconds from 1 to 86400")
			return
		}
		*dst = n
	}
	useForwarded := false
	for k, v := range cm.Data {
		switch k {
		case "worker-processes":
			if n, err := strconv.Atoi(v); v != "auto" && (err != nil || n < 1 || n > 1024) {
				bad(k, v, `"auto" or a number from 1 to 1024`)
				continue
			}
			g.WorkerProcesses = v
		case "proxy-connect-timeout":
			seconds(k, v, &g.ProxyConnectTimeout)
		case "proxy-read-timeout":
			seconds(k, v, &g.ProxyReadTimeout)
		case "proxy-send-timeout":
			seconds(k, v, &g.ProxySendTimeout)
		case "proxy-body-size":
			if !nginxvalue.Size(v) {
				bad(k, v, "an nginx size such as 8m")
				continue
			}
			g.ProxyBodySize = v
		case "upstream-keepalive-connections":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 100000 {
				bad(k, v, "a number from 0 to 100000")
				continue
			}
			g.UpstreamKeepalive = n
		case "enable-access-log":
			bv, err := strconv.ParseBool(v)
			if err != nil {
				bad(k, v, `"true" or "false"`)
				continue
			}
			g.DisableAccessLog = !bv
		case "log-format-upstream":
			if err := ValidLogFormat(v); err != nil {
				report(Problem{Kind: "ConfigMap", Object: opts.ConfigMap, Field: "data." + k,
					Reason: err.Error() + "; the default format is used"})
				continue
			}
			g.LogFormatUpstream = v
		case "log-format-escape-json":
			bv, err := strconv.ParseBool(v)
			if err != nil {
				bad(k, v, `"true" or "false"`)
				continue
			}
			g.LogFormatEscapeJSON = bv
		case "log-format-json":
			bv, err := strconv.ParseBool(v)
			if err != nil {
				bad(k, v, `"true" or "false"`)
				continue
			}
			g.LogFormatJSON = bv
		case "custom-http-errors":
			codes, err := errorCodesSetting(v) // errors.go
			if err != nil {
				report(Problem{Kind: "ConfigMap", Object: opts.ConfigMap, Field: "data." + k, Reason: err.Error() + "; no custom error pages are used"})
				continue
			}
			g.CustomHTTPErrors = codes
		case "ssl-redirect":
			bv, err := strconv.ParseBool(v)
			if err != nil {
				bad(k, v, `"true" or "false"`)
				continue
			}
			g.SSLRedirect = bv
		case "force-ssl-redirect":
			bv, err := strconv.ParseBool(v)
			if err != nil {
				bad(k, v, `"true" or "false"`)
				continue
			}
			g.ForceSSLRedirect = bv
		case "lua-shared-dicts":
			ignored, err := parseLuaDicts(v, &g.Settings.LuaDicts) // luadicts.go
			if err != nil {
				report(Problem{Kind: "ConfigMap", Object: opts.ConfigMap, Field: "data." + k, Reason: err.Error() + "; the default sizes are used"})
				continue
			}
			for _, name := range ignored {
				report(Problem{Kind: "ConfigMap", Object: opts.ConfigMap, Field: "data." + k, Warning: true,
					Reason: fmt.Sprintf("tidegate has no Lua shared dict %q (it sizes only configuration_data and certificate_data); it is ignored", name)})
			}
		case "allow-snippet-annotations", "global-allowed-response-headers":
			if err := g.snippets.parse(k, v); err != nil { // snippets.go
				report(Problem{Kind: "ConfigMap", Object: opts.ConfigMap, Field: "data." + k, Reason: err.Error() + "; the default is used"})
			}
		case "ssl-session-ticket-key":
			report(Problem{Kind: "ConfigMap", Object: opts.ConfigMap, Field: "data." + k, Warning: true,
				Reason: "not supported: a ConfigMap is no place for the key that decrypts every session ticket, and so every recorded TLS 1.2 session resumed with one; with ssl-session-tickets, nginx makes its own key at each start and reload. It is ignored"})
		default:
			handled, err := moreGlobal(k, v, &g.Settings, &useForwarded)
			switch {
			case err != nil:
				report(Problem{Kind: "ConfigMap", Object: opts.ConfigMap, Field: "data." + k, Reason: err.Error() + "; the default is used"})
			case !handled:
				report(Problem{Kind: "ConfigMap", Object: opts.ConfigMap, Field: "data." + k, Warning: true,
					Reason: "not a ConfigMap key tidegate knows (yet); it is ignored — check the spelling"})
			}
		}
	}
	g.Settings.UseForwardedHeaders = useForwarded
	switch {
	case g.Settings.UseProxyProtocol:
		// As in ingress-nginx, the PROXY header names the client, not
		// X-Forwarded-For.
		g.Settings.RealIPHeader = "proxy_protocol"
		if len(g.Settings.RealIPFrom) == 0 {
			g.Settings.RealIPFrom = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
		}
	case useForwarded:
		g.Settings.RealIPHeader = "X-Forwarded-For"
	default:
		g.Settings.RealIPFrom = nil
	}
	return g
}
