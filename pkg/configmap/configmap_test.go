package configmap

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/tidegate/tidegate/pkg/annotations"
)

// TestEveryKey: every registered key applies a good value and refuses a
// bad one with the wording users see, keeping the default.
func TestEveryKey(t *testing.T) {
	tests := map[string]struct {
		good  string
		check func(c Config) bool
		bad   string
		why   string // the whole detail of the rejection
	}{
		"worker-processes":               {"4", func(c Config) bool { return c.WorkerProcesses == "4" }, "0", `value "0" is not "auto" or a number from 1 to 1024; the default is used`},
		"proxy-connect-timeout":          {"10s", func(c Config) bool { return c.ProxyConnectTimeout == 10 }, "0", `value "0" is not a number of seconds from 1 to 86400; the default is used`},
		"proxy-read-timeout":             {"120", func(c Config) bool { return c.ProxyReadTimeout == 120 }, " 5", `value " 5" is not a number of seconds from 1 to 86400; the default is used`},
		"proxy-send-timeout":             {"30", func(c Config) bool { return c.ProxySendTimeout == 30 }, "86401", `value "86401" is not a number of seconds from 1 to 86400; the default is used`},
		"proxy-body-size":                {"8m", func(c Config) bool { return c.ProxyBodySize == "8m" }, "8m;", `value "8m;" is not an nginx size such as 8m; the default is used`},
		"upstream-keepalive-connections": {"0", func(c Config) bool { return c.UpstreamKeepalive == 0 }, "100001", `value "100001" is not a number from 0 to 100000; the default is used`},
		"enable-access-log":              {"false", func(c Config) bool { return c.DisableAccessLog }, "no", `value "no" is not "true" or "false"; the default is used`},
		"log-format-upstream":            {"$status", func(c Config) bool { return c.LogFormatUpstream == "$status" }, "$nosuch", "log format uses $nosuch, which is not a variable tidegate knows; the default format is used"},
		"log-format-escape-json":         {"true", func(c Config) bool { return c.LogFormatEscapeJSON }, " true", `value " true" is not "true" or "false"; the default is used`},
		"log-format-json":                {"true", func(c Config) bool { return c.LogFormatJSON }, "yes", `value "yes" is not "true" or "false"; the default is used`},
		"custom-http-errors":             {"503,404", func(c Config) bool { return reflect.DeepEqual(c.CustomHTTPErrors, []int{404, 503}) }, "200", "(a list such as 404,503 of codes 400-599); no custom error pages are used"},
		"ssl-redirect":                   {"false", func(c Config) bool { return !c.SSLRedirect }, "off", `value "off" is not "true" or "false"; the default is used`},
		"force-ssl-redirect":             {"true", func(c Config) bool { return c.ForceSSLRedirect }, "on", `value "on" is not "true" or "false"; the default is used`},
		"lua-shared-dicts":               {"certificate_data: 512", func(c Config) bool { return c.Settings.LuaDicts.Certificates == 512 }, "x", `"x" is not "name: size" with a size such as 512 or 512m; the default sizes are used`},
		"allow-snippet-annotations":      {" true ", func(c Config) bool { return c.AllowSnippetAnnotations }, "yes", `value "yes" is not "true" or "false"; the default is used`},
		"global-allowed-response-headers": {"X-A, x-b", func(c Config) bool {
			return reflect.DeepEqual(c.AllowedResponseHeaders, map[string]bool{"x-a": true, "x-b": true})
		},
			"X A", `header name "X A" contains ' '; the default is used`},
		"load-balance":                  {"ewma", func(c Config) bool { return c.LoadBalance == "ewma" }, "least_conn", `value "least_conn" is not round_robin or ewma; round_robin is used`},
		"proxy-buffer-size":             {"16k", func(c Config) bool { return c.Settings.Buffers.ProxyBufferSize == "16k" }, "16", `value "16" is not an nginx size from 1k to 64m such as 16k; the default is used`},
		"proxy-buffers-number":          {"8", func(c Config) bool { return c.Settings.Buffers.ProxyBuffersNumber == 8 }, "2", `value "2" is not a number from 4 to 1024; the default is used`},
		"client-header-buffer-size":     {"2k", func(c Config) bool { return c.Settings.Buffers.ClientHeaderBufferSize == "2k" }, "2g", `value "2g" is not an nginx size from 1k to 64m such as 16k; the default is used`},
		"client-body-buffer-size":       {"1m", func(c Config) bool { return c.Settings.Buffers.ClientBodyBufferSize == "1m" }, "0", `value "0" is not an nginx size from 1k to 64m such as 16k; the default is used`},
		"large-client-header-buffers":   {"4  16k", func(c Config) bool { return c.Settings.Buffers.LargeClientHeaderBuffers == "4 16k" }, "4", `value "4" is not "NUMBER SIZE" such as "4 16k"; the default is used`},
		"enable-underscores-in-headers": {"true", func(c Config) bool { return c.Settings.Buffers.UnderscoresInHeaders }, "1x", `value "1x" is not "true" or "false"; the default is used`},
		"hsts":                          {"false", func(c Config) bool { return !c.Settings.HSTS }, "nah", `value "nah" is not "true" or "false"; the default is used`},
		"hsts-max-age":                  {"60", func(c Config) bool { return c.Settings.HSTSMaxAge == 60 }, "-1", `value "-1" is not a number of seconds from 0 to 1073741824; the default is used`},
		"hsts-include-subdomains":       {"false", func(c Config) bool { return !c.Settings.HSTSIncludeSubdomains }, "x", `value "x" is not "true" or "false"; the default is used`},
		"hsts-preload":                  {"true", func(c Config) bool { return c.Settings.HSTSPreload }, "x", `value "x" is not "true" or "false"; the default is used`},
		"ssl-protocols":                 {"TLSv1.3", func(c Config) bool { return reflect.DeepEqual(c.Settings.SSLProtocols, []string{"TLSv1.3"}) }, "SSLv3", `"SSLv3" is not one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3; the default is used`},
		"ssl-ciphers":                   {"HIGH:!aNULL", func(c Config) bool { return c.Settings.SSLCiphers == "HIGH:!aNULL" }, "!aNULL", `ssl-ciphers "!aNULL" names no cipher to use; the default is used`},
		"ssl-session-tickets":           {"true", func(c Config) bool { return c.Settings.SSLSessionTickets }, "x", `value "x" is not "true" or "false"; the default is used`},
		"use-http2":                     {"false", func(c Config) bool { return c.Settings.NoHTTP2 }, "x", `value "x" is not "true" or "false"; the default is used`},
		"use-gzip":                      {"true", func(c Config) bool { return c.Settings.UseGzip }, "x", `value "x" is not "true" or "false"; the default is used`},
		"gzip-level":                    {"5", func(c Config) bool { return c.Settings.GzipLevel == 5 }, "10", `value "10" is not a gzip level from 1 to 9; the default is used`},
		"gzip-min-length":               {"0", func(c Config) bool { return c.Settings.GzipMinLength == 0 }, "-1", `value "-1" is not a number of bytes from 0 to 1073741824; the default is used`},
		"gzip-types":                    {"Text/HTML", func(c Config) bool { return reflect.DeepEqual(c.Settings.GzipTypes, []string{"text/html"}) }, "text/x#y", `"text/x#y" is not a MIME type such as text/html; the default is used`},
		"client-header-timeout":         {"10", func(c Config) bool { return c.Settings.ClientHeaderTimeout == 10 }, "0", `value "0" is not a number of seconds from 1 to 3600; the default is used`},
		"keep-alive":                    {"0", func(c Config) bool { return c.Settings.KeepAlive == 0 }, "3601", `value "3601" is not a number of seconds from 0 to 3600; the default is used`},
		"worker-shutdown-timeout":       {"10s", func(c Config) bool { return c.Settings.WorkerShutdownTimeout == 10 }, "x", `value "x" is not a number of seconds from 0 to 86400; the default is used`},
		"upstream-keepalive-timeout":    {"5", func(c Config) bool { return c.Settings.UpstreamKeepaliveTimeout == 5 }, "0", `value "0" is not a number of seconds from 1 to 86400; the default is used`},
		"upstream-keepalive-requests":   {"5", func(c Config) bool { return c.Settings.UpstreamKeepaliveRequests == 5 }, "0", `value "0" is not a number from 1 to 1073741824; the default is used`},
		"proxy-next-upstream": {"error http_503", func(c Config) bool {
			return reflect.DeepEqual(c.Settings.ProxyNextUpstream, []string{"error", "http_503"})
		}, "http_418", `"http_418" is not a proxy_next_upstream condition; the default is used`},
		"proxy-next-upstream-tries":  {"0", func(c Config) bool { return c.Settings.ProxyNextUpstreamTries == 0 }, "101", `value "101" is not a number from 0 to 100; the default is used`},
		"compute-full-forwarded-for": {"true", func(c Config) bool { return c.Settings.ComputeFullForwardedFor }, "x", `value "x" is not "true" or "false"; the default is used`},
		"use-forwarded-headers": {"true", func(c Config) bool {
			return c.Settings.UseForwardedHeaders && c.Settings.RealIPHeader == "X-Forwarded-For"
		}, "x", `value "x" is not "true" or "false"; the default is used`},
		"use-proxy-protocol":     {"true", func(c Config) bool { return c.Settings.UseProxyProtocol && c.Settings.RealIPHeader == "proxy_protocol" }, "x", `value "x" is not "true" or "false"; the default is used`},
		"proxy-real-ip-cidr":     {"10.0.0.0/8", func(c Config) bool { return c.Settings.RealIPFrom == nil }, "nope", `"nope" is not an IP address or CIDR; the default is used`},
		"server-tokens":          {"true", func(c Config) bool { return c.Settings.ServerTokens }, "x", `value "x" is not "true" or "false"; the default is used`},
		"keep-alive-requests":    {"10", func(c Config) bool { return c.Settings.KeepAliveRequests == 10 }, "0", `value "0" is not a number from 1 to 1073741824; the default is used`},
		"max-worker-connections": {"0", func(c Config) bool { return c.Settings.WorkerConnections == 0 }, "10", `value "10" is not 0 or a number from 512 to 1048576; the default is used`},
		"max-worker-open-files":  {"4096", func(c Config) bool { return c.Settings.MaxWorkerOpenFiles == 4096 }, "100", `value "100" is not 0 or a number from 1024 to 1073741824; the default is used`},
		"block-cidrs": {"10.1.2.3/8", func(c Config) bool {
			return reflect.DeepEqual(c.Settings.BlockCIDRs, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
		}, "nope", `"nope" is not an IP address or CIDR; the default is used`},
	}
	for _, k := range Keys() {
		if _, ok := tests[k]; !ok {
			t.Errorf("key %s has no case here", k)
		}
	}
	def, _ := Parse(nil)
	for key, tc := range tests {
		t.Run(key, func(t *testing.T) {
			c, report := Parse(map[string]string{key: tc.good})
			if len(report) != 0 || !tc.check(c) {
				t.Errorf("%s=%q: report %+v, check %v", key, tc.good, report, tc.check(c))
			}
			c, report = Parse(map[string]string{key: tc.bad})
			if len(report) != 1 || report[0].Status != annotations.Rejected || !strings.HasSuffix(report[0].Detail, tc.why) {
				t.Errorf("%s=%q: report %+v, want rejected with %q", key, tc.bad, report, tc.why)
			}
			if !reflect.DeepEqual(c, def) {
				t.Errorf("%s=%q: a refused value changed the settings", key, tc.bad)
			}
		})
	}
}

// TestReport: unknown, unsupported and partly applied keys are reported,
// sorted by key, and the rest still apply.
func TestReport(t *testing.T) {
	c, report := Parse(map[string]string{
		"ssl-session-ticket-key": "secret",
		"use-gzipp":              "true",
		"lua-shared-dicts":       "balancer_ewma: 10, configuration_data: 100",
		"gzip-level":             "4",
	})
	var got []string
	for _, e := range report {
		got = append(got, e.Key+" "+string(e.Status))
	}
	want := []string{"lua-shared-dicts applied-with-difference", "ssl-session-ticket-key ignored-unsupported", "use-gzipp unknown"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("report %q, want %q", got, want)
	}
	if !strings.Contains(report[0].Detail, `no Lua shared dict "balancer_ewma"`) || c.Settings.LuaDicts.Backends != 100 || c.Settings.GzipLevel != 4 {
		t.Errorf("detail %q, dicts %+v, gzip level %d", report[0].Detail, c.Settings.LuaDicts, c.Settings.GzipLevel)
	}
	// Without use-proxy-protocol or use-forwarded-headers, no proxy is
	// trusted to name the client, whatever proxy-real-ip-cidr says; with
	// the PROXY protocol, any peer is by default.
	if c, _ := Parse(map[string]string{"use-proxy-protocol": "true"}); len(c.Settings.RealIPFrom) != 2 {
		t.Errorf("proxy protocol trusts %v, want every address", c.Settings.RealIPFrom)
	}
}
