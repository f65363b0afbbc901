package model

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/tidegate/tidegate/pkg/snapshot"
)

// DefaultSNI is the name the Lua lookup falls back to when no certificate
// serves the SNI name exactly or by wildcard, and when the client sent none.
const DefaultSNI = "*"

// addDefaultCertificate serves the --default-ssl-certificate Secret under
// DefaultSNI, as ingress-nginx does: for unknown names, clients without SNI,
// and TLS hosts without a secretName or with a broken Secret. Rotating it
// is a push, like any certificate.
func (b *builder) addDefaultCertificate() {
	ref := b.opts.DefaultSSLCertificate
	if ref == "" {
		return
	}
	ns, name, _ := strings.Cut(ref, "/")
	if err := checkTLSSecret(b.snap.Secret(ns, name)); err != nil {
		b.report(Problem{Kind: "Secret", Object: ref, Field: "--default-ssl-certificate",
			Reason: fmt.Sprintf("%v; tidegate's self-signed certificate is served instead", err)})
		return
	}
	c := b.certificate(ns, name)
	if len(c.Hosts) >= MaxCertificateHosts {
		b.report(Problem{Kind: "Secret", Object: ref, Field: "--default-ssl-certificate",
			Reason: fmt.Sprintf("already serves %d hosts, the most one certificate takes; tidegate's self-signed certificate is the default", MaxCertificateHosts)})
		return
	}
	c.Hosts = append(c.Hosts, DefaultSNI)
}

// certificate returns the Certificate of a checked TLS Secret, made on
// first use.
func (b *builder) certificate(ns, name string) *Certificate {
	if b.certs == nil {
		b.certs = map[string]*Certificate{}
		b.certByHost = map[string]string{}
	}
	sk := snapshot.Key(ns, name)
	c := b.certs[sk]
	if c == nil {
		sec := b.snap.Secret(ns, name)
		c = &Certificate{ID: sk, CertPEM: string(sec.Data[corev1.TLSCertKey]), KeyPEM: string(sec.Data[corev1.TLSPrivateKeyKey])}
		b.certs[sk] = c
	}
	return c
}

// addTLS records the certificates of an Ingress's spec.tls and returns its
// TLS hosts. A missing or malformed Secret is reported; its hosts still get
// HTTPS, served with the default certificate.
func (b *builder) addTLS(ing *networkingv1.Ingress) map[string]bool {
	key := ingressKey(ing)
	hosts := map[string]bool{}
	for ti, t := range ing.Spec.TLS {
		field := fmt.Sprintf("spec.tls[%d]", ti)
		var valid []string
		for hi, h := range t.Hosts {
			h = lower(h)
			if err := validateHost(h); err != nil {
				b.report(Problem{Kind: "Ingress", Object: key, Field: fmt.Sprintf("%s.hosts[%d]", field, hi), Reason: err.Error()})
				continue
			}
			hosts[h] = true
			valid = append(valid, h)
		}
		if t.SecretName == "" || len(valid) == 0 {
			continue
		}
		sk := snapshot.Key(ing.Namespace, t.SecretName)
		if err := checkTLSSecret(b.snap.Secret(ing.Namespace, t.SecretName)); err != nil {
			b.report(Problem{Kind: "Ingress", Object: key, Field: field + ".secretName", Warning: true,
				Reason: fmt.Sprintf("secret %s: %v; the default certificate is served for %v", sk, err, valid)})
			continue
		}
		c := b.certificate(ing.Namespace, t.SecretName)
		for _, h := range valid {
			if owner := b.certByHost[h]; owner != "" {
				if owner != sk {
					b.report(Problem{Kind: "Ingress", Object: key, Field: field,
						Reason: fmt.Sprintf("host %q already uses the certificate of secret %s from an older Ingress; %s is not used for it", h, owner, sk)})
				}
				continue
			}
			if len(c.Hosts) >= MaxCertificateHosts {
				b.report(Problem{Kind: "Ingress", Object: key, Field: field,
					Reason: fmt.Sprintf("secret %s already serves %d hosts, the most one certificate takes; the default certificate is served for %q", sk, MaxCertificateHosts, h)})
				continue
			}
			c.Hosts = append(c.Hosts, h)
			b.certByHost[h] = sk
		}
	}
	return hosts
}

// checkTLSSecret verifies a Secret holds a usable PEM key pair.
func checkTLSSecret(sec *corev1.Secret) error {
	if sec == nil {
		return fmt.Errorf("not found")
	}
	crt, key := sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey]
	if len(crt) == 0 || len(key) == 0 {
		return fmt.Errorf("needs both %s and %s", corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return fmt.Errorf("%s/%s are not a valid PEM key pair: %v", corev1.TLSCertKey, corev1.TLSPrivateKeyKey, err)
	}
	// X509KeyPair parses only the leaf; nginx (OpenSSL) parses every
	// certificate of the chain and refuses the pair if one does not parse.
	for i, der := range pair.Certificate[1:] {
		if _, err := x509.ParseCertificate(der); err != nil {
			return fmt.Errorf("%s: certificate %d of the chain does not parse: %v", corev1.TLSCertKey, i+2, err)
		}
	}
	return nil
}
