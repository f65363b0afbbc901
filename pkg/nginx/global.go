package nginx

import (
	"fmt"
	"strings"

	"github.com/tidegate/tidegate/pkg/model"
)

// globalLines renders the ConfigMap's http-level settings. Every value was
// validated by the model (numbers, fixed tokens, CIDRs); the cipher list is
// quoted as well.
func globalLines(s model.Settings) ([]string, error) {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	add("keepalive_timeout %ds;", s.KeepAlive)
	add("client_header_timeout %ds;", s.ClientHeaderTimeout)
	add("ssl_protocols %s;", strings.Join(s.SSLProtocols, " "))
	ciphers, err := QuoteVarFree(s.SSLCiphers)
	if err != nil {
		return nil, fmt.Errorf("ssl-ciphers: %w", err)
	}
	add("ssl_ciphers %s;", ciphers)
	add("ssl_prefer_server_ciphers on;")
	add("ssl_session_tickets %s;", map[bool]string{true: "on", false: "off"}[s.SSLSessionTickets])
	if len(s.ProxyNextUpstream) > 0 {
		add("proxy_next_upstream %s;", strings.Join(s.ProxyNextUpstream, " "))
	}
	add("proxy_next_upstream_tries %d;", s.ProxyNextUpstreamTries)
	if s.HSTS {
		v := fmt.Sprintf("max-age=%d", s.HSTSMaxAge)
		if s.HSTSIncludeSubdomains {
			v += "; includeSubDomains"
		}
		if s.HSTSPreload {
			v += "; preload"
		}
		// Only on HTTPS answers: an empty value sends no header.
		add(`map $https $tidegate_hsts { on "%s"; default ""; }`, v)
		add("%s", hstsHeaderLine) // snippets.go: repeated where a level adds headers
	}
	if s.UseGzip {
		add("gzip on;")
		add("gzip_comp_level %d;", s.GzipLevel)
		add("gzip_min_length %d;", s.GzipMinLength)
		add("gzip_proxied any;")
		add("gzip_vary on;")
		add("gzip_types %s;", strings.Join(s.GzipTypes, " "))
	}
	for _, p := range s.RealIPFrom {
		add("set_real_ip_from %s;", p.String())
	}
	if len(s.RealIPFrom) > 0 {
		add("real_ip_header %s;", s.RealIPHeader)
		if s.RealIPHeader == "X-Forwarded-For" {
			add("real_ip_recursive on;")
		}
	}
	if len(s.BlockCIDRs) > 0 {
		// Checked first in every public server (nginx.tmpl), before any
		// return of tidegate's own (catch-all 404, redirects): deny would
		// come after them.
		cidrs := make([]string, len(s.BlockCIDRs))
		for i, p := range s.BlockCIDRs {
			cidrs[i] = p.String() + " 1;"
		}
		add("geo $tidegate_blocked { default 0; %s }", strings.Join(cidrs, " "))
	}
	add("keepalive_requests %d;", s.KeepAliveRequests)
	add("server_tokens %s;", map[bool]string{true: "on", false: "off"}[s.ServerTokens])
	xff := "$remote_addr"
	if s.ComputeFullForwardedFor {
		xff = "$proxy_add_x_forwarded_for"
	}
	add("map $remote_addr $tidegate_xff { default %s; }", xff)
	if s.UseForwardedHeaders {
		// A proxy in front says how the client came (ingress-nginx's
		// $pass_access_scheme, $pass_server_port, $best_http_host);
		// without its header, this connection does.
		add(`map $http_x_forwarded_proto $tidegate_pass_scheme { default $http_x_forwarded_proto; "" $scheme; }`)
		add(`map $http_x_forwarded_port $tidegate_pass_port { default $http_x_forwarded_port; "" $server_port; }`)
		add(`map $http_x_forwarded_host $tidegate_pass_host { default $http_x_forwarded_host; "" $tidegate_host; }`)
	}
	b := s.Buffers
	if b.ProxyBufferSize != "" || b.ProxyBuffersNumber != 0 {
		size, n := b.ProxyBufferSize, b.ProxyBuffersNumber
		if size == "" {
			size = "4k" // ingress-nginx's default
		}
		if n == 0 {
			n = 4
		}
		add("proxy_buffer_size %s;", size)
		add("proxy_buffers %d %s;", n, size)
	}
	if b.ClientHeaderBufferSize != "" {
		add("client_header_buffer_size %s;", b.ClientHeaderBufferSize)
	}
	if b.LargeClientHeaderBuffers != "" {
		add("large_client_header_buffers %s;", b.LargeClientHeaderBuffers)
	}
	if b.ClientBodyBufferSize != "" {
		add("client_body_buffer_size %s;", b.ClientBodyBufferSize)
	}
	if b.UnderscoresInHeaders {
		add("underscores_in_headers on;")
	}
	return out, nil
}
