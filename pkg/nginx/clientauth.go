package nginx

import (
	"fmt"
	"path/filepath"

	"github.com/tidegate/tidegate/pkg/model"
)

// Client certificate authentication (auth-tls-*). nginx asks for and
// checks the certificate in the TLS handshake of the server block the
// client named in SNI, so the CA, the mode and the depth are lines of the
// host's server block; a host with them never shares a block with hosts
// without (hostgroups.go compares whole blocks). nginx answers a missing
// or bad certificate with 400 (or the error page), and refuses (421) a
// request whose Host names such a server on a connection whose SNI named
// another one.

// verifyModes are the ssl_verify_client values the model may carry.
var verifyModes = map[string]bool{"on": true, "optional": true, "optional_no_ca": true, "off": true}

// clientAuthServerLines are the server-level lines of a host's client
// certificate authentication.
func clientAuthServerLines(ca *model.ClientAuth, authDir string) ([]string, error) {
	if ca == nil || ca.Denied || ca.CAFile == "" {
		return nil, nil
	}
	if !verifyModes[ca.Verify] || ca.Depth < 1 || ca.Depth > 100 {
		return nil, fmt.Errorf("auth-tls: verify %q depth %d", ca.Verify, ca.Depth)
	}
	file, err := Quote(filepath.Join(authDir, ca.CAFile))
	if err != nil {
		return nil, err
	}
	out := []string{
		"ssl_client_certificate " + file + ";",
		"ssl_verify_client " + ca.Verify + ";",
		fmt.Sprintf("ssl_verify_depth %d;", ca.Depth),
	}
	if ca.CRLFile != "" {
		crl, err := Quote(filepath.Join(authDir, ca.CRLFile))
		if err != nil {
			return nil, err
		}
		out = append(out, "ssl_crl "+crl+";")
	}
	if ca.ErrorPage != "" {
		// 495: a certificate that does not verify; 496: none sent. nginx
		// redirects (302) to an absolute URL.
		page, err := QuoteVarFree(ca.ErrorPage)
		if err != nil {
			return nil, fmt.Errorf("auth-tls-error-page: %w", err)
		}
		out = append(out, "error_page 495 496 "+page+";")
	}
	return out, nil
}

// clientAuthLocationLines guard each location of the host, after its
// redirect to HTTPS. Over TLS nginx checks the certificate itself, per
// request, against the server the Host header selects (a client that sent
// no SNI gets 400 too). A plain-HTTP request (a host without spec.tls, or
// ssl-redirect off) has no certificate at all: with verify "on" it is
// refused here (403) instead of reaching the backend unchecked.
// auth-tls-match-cn refuses subjects that do not match, as ingress-nginx
// does.
func clientAuthLocationLines(ca *model.ClientAuth, add func(string, ...any)) error {
	if ca == nil || ca.Denied {
		return nil
	}
	if ca.Verify == "on" {
		add(`if ($ssl_client_verify != SUCCESS) {`)
		add("    return 403;")
		add("}")
	}
	if ca.MatchCN != "" {
		re, err := Quote(ca.MatchCN)
		if err != nil {
			return fmt.Errorf("auth-tls-match-cn: %w", err)
		}
		add("if ($ssl_client_s_dn !~ %s) {", re)
		add("    return 403;")
		add("}")
	}
	return nil
}

// clientAuthHeaders are the request headers that tell the backend about the
// client certificate, with ingress-nginx's names.
func clientAuthHeaders(ca *model.ClientAuth) [][2]string {
	if ca == nil || ca.Denied {
		return nil
	}
	h := [][2]string{
		{"ssl-client-verify", "$ssl_client_verify"},
		{"ssl-client-subject-dn", "$ssl_client_s_dn"},
		{"ssl-client-issuer-dn", "$ssl_client_i_dn"},
	}
	if ca.PassCertificate {
		h = append(h, [2]string{"ssl-client-cert", "$ssl_client_escaped_cert"})
	}
	return h
}
