package model

import (
	"crypto/tls"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
)

// BackendTLS are the files of a location's TLS towards its backend
// (proxy-ssl-secret): the CAs to verify it with and the client certificate
// to present, each an AuthFile named by content ("" when the Secret has
// none).
type BackendTLS struct {
	CAFile, CertFile, KeyFile string
}

// backendTLS reads the proxy-ssl-secret of ing: ca.crt (required to verify
// the backend) and tls.crt with tls.key (a client certificate, both or
// neither). It returns an error saying what is wrong with the Secret.
func (b *builder) backendTLS(ing *networkingv1.Ingress, ref string, verify bool) (*BackendTLS, error) {
	sec, key, err := b.secretRef(ing, ref, "proxy-ssl-secret") // clientauth.go
	if err != nil {
		return nil, err
	}
	out := &BackendTLS{}
	if raw := sec.Data["ca.crt"]; len(raw) > 0 {
		certs, err := caPEM(raw, "proxy-ssl-secret "+key)
		if err != nil {
			return nil, err
		}
		out.CAFile = b.addAuthFile(certs, ".ca.pem", certs)
	} else if verify {
		return nil, fmt.Errorf("proxy-ssl-secret %s has no ca.crt, which proxy-ssl-verify needs to check the backend's certificate", key)
	}
	crt, k := sec.Data["tls.crt"], sec.Data["tls.key"]
	switch {
	case len(crt) > 0 && len(k) > 0:
		if _, err := tls.X509KeyPair(crt, k); err != nil {
			return nil, fmt.Errorf("proxy-ssl-secret %s: tls.crt and tls.key are not a key pair: %v", key, err)
		}
		out.CertFile = b.addAuthFile(string(crt), ".crt.pem", string(crt))
		out.KeyFile = b.addAuthFile(string(k), ".key.pem", string(k))
	case len(crt) > 0 || len(k) > 0:
		return nil, fmt.Errorf("proxy-ssl-secret %s has only one of tls.crt and tls.key", key)
	}
	if *out == (BackendTLS{}) {
		return nil, fmt.Errorf("proxy-ssl-secret %s has neither ca.crt nor tls.crt and tls.key", key)
	}
	return out, nil
}
