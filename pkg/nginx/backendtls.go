package nginx

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/tidegate/tidegate/pkg/annotations"
	"github.com/tidegate/tidegate/pkg/model"
)

// Upstream is the upstream block every location proxies through: the Lua
// balancer picks the peer.
const Upstream = "tidegate_upstream"

// backendTLSLines renders a location's TLS towards an HTTPS or GRPCS
// backend (proxy-ssl-*) and returns the upstream block to proxy through.
//
// nginx keeps idle backend connections per upstream block and reuses one
// for any request to the same address, whatever TLS settings opened it: a
// connection verified for one location could serve another that presents
// another client certificate, or the other way round. So each distinct set
// of backend TLS settings gets an upstream block of its own (the same Lua
// balancer, its own keepalive pool).
func backendTLSLines(l *model.Location, c annotations.Config, v *view, add func(string, ...any)) (string, error) {
	prefix := map[string]string{"HTTPS": "proxy", "GRPCS": "grpc"}[c.Proxy.Protocol]
	ps := c.ProxySSL
	if prefix == "" || (l.BackendTLS == nil && len(ps.Protocols) == 0 && ps.Ciphers == "") {
		return Upstream, nil
	}
	var lines []string
	in := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	file := func(directive, name string) error {
		if name == "" {
			return nil
		}
		q, err := Quote(filepath.Join(v.authDir, name))
		if err != nil {
			return err
		}
		in("%s_%s %s;", prefix, directive, q)
		return nil
	}
	if t := l.BackendTLS; t != nil {
		for _, f := range [][2]string{{"ssl_trusted_certificate", t.CAFile}, {"ssl_certificate", t.CertFile}, {"ssl_certificate_key", t.KeyFile}} {
			if err := file(f[0], f[1]); err != nil {
				return "", fmt.Errorf("proxy-ssl-secret: %w", err)
			}
		}
		if ps.Verify && t.CAFile != "" {
			in("%s_ssl_verify on;", prefix)
			if ps.VerifyDepth > 0 {
				in("%s_ssl_verify_depth %d;", prefix, ps.VerifyDepth)
			}
		}
	}
	if len(ps.Protocols) > 0 {
		in("%s_ssl_protocols %s;", prefix, strings.Join(ps.Protocols, " ")) // checked names
	}
	if ps.Ciphers != "" {
		q, err := Quote(ps.Ciphers)
		if err != nil {
			return "", fmt.Errorf("proxy-ssl-ciphers: %w", err)
		}
		in("%s_ssl_ciphers %s;", prefix, q)
	}
	for _, line := range lines {
		add("%s", line)
	}
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	name := Upstream + "_" + hex.EncodeToString(sum[:6])
	v.upstream(name)
	return name, nil
}

// upstream declares one more upstream block of the balancer.
func (v *view) upstream(name string) {
	for _, u := range v.Upstreams {
		if u == name {
			return
		}
	}
	v.Upstreams = append(v.Upstreams, name)
}
