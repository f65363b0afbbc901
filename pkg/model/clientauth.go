package model

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/tidegate/tidegate/pkg/annotations"
)

// ClientAuth is a host's client certificate authentication, from the
// auth-tls-* annotations of the oldest Ingress of the host that sets
// auth-tls-secret (ingress-nginx's rule: it is a setting of the server, so
// it covers the paths of every Ingress of the host).
type ClientAuth struct {
	// CAFile and CRLFile name the AuthFiles with the Secret's ca.crt and
	// ca.crl (CRLFile is empty without one; both are empty with Verify
	// "off"). They are named by content: nginx reads them when it loads
	// its configuration, so a new CA must make a new nginx.conf.
	CAFile, CRLFile string
	// Verify is on, optional, optional_no_ca or off.
	Verify string
	// Depth is the longest chain accepted, from the client certificate.
	Depth int
	// PassCertificate, ErrorPage and MatchCN are as in annotations.AuthTLS.
	PassCertificate bool
	ErrorPage       string
	MatchCN         string
	// Ingress is the Ingress the settings come from.
	Ingress string
	// Denied is set when that Ingress's Secret is unusable: every request
	// to the host is refused (403) rather than let through unchecked.
	Denied bool
}

// addClientAuth records the auth-tls-* annotations of ing for one of its
// hosts. Ingresses arrive oldest first, so the first one that sets
// auth-tls-secret decides; a younger one that asks for something else is
// told so.
func (b *builder) addClientAuth(ing *networkingv1.Ingress, srv *serverBuilder) {
	key := ingressKey(ing)
	a := b.anns[key].AuthTLS
	field := "metadata.annotations[" + annotations.Prefix + "auth-tls-secret]"
	if a.Secret == "" {
		if a != (annotations.AuthTLS{}) && srv.clientAuth == nil {
			b.report(Problem{Kind: "Ingress", Object: key, Field: field,
				Reason: "auth-tls-* annotations without auth-tls-secret are ignored: set it to the Secret whose ca.crt client certificates must chain to"})
		}
		return
	}
	if srv.host == "" {
		b.report(Problem{Kind: "Ingress", Object: key, Field: field,
			Reason: "client certificate authentication is a setting of a host: a rule without a host is not covered; give the rule a host"})
		return
	}
	if srv.clientAuth != nil {
		if srv.clientAuth.Ingress != key {
			b.report(Problem{Kind: "Ingress", Object: key, Field: field, Warning: true,
				Reason: fmt.Sprintf("host %s already takes its client certificate settings from the older Ingress %s; this Ingress's auth-tls-* do not apply to it", srv.host, srv.clientAuth.Ingress)})
		}
		return
	}
	ca := &ClientAuth{Verify: a.Verify, Depth: a.Depth, PassCertificate: a.PassCertificate, ErrorPage: a.ErrorPage, MatchCN: a.MatchCN, Ingress: key}
	if ca.Verify == "" {
		ca.Verify = "on"
	}
	if ca.Depth == 0 {
		ca.Depth = annotations.DefaultVerifyDepth
	}
	srv.clientAuth = ca
	if ca.Verify == "off" {
		return
	}
	certs, crl, err := b.clientAuthFiles(ing, a.Secret)
	if err != nil {
		b.report(Problem{Kind: "Ingress", Object: key, Field: field, Warning: isNotFound(err),
			Reason: fmt.Sprintf("%v; requests to %s are refused (403) until it is fixed", err, srv.host)})
		ca.Denied = true
		return
	}
	ca.CAFile = b.addAuthFile(certs, ".ca.pem", certs)
	if crl != "" {
		ca.CRLFile = b.addAuthFile(crl, ".crl.pem", crl)
	}
}

// clientAuthFiles reads the CA certificates (ca.crt) and the optional
// revocation list (ca.crl) of an auth-tls-secret and returns them as PEM
// that holds only what was parsed, so nginx is never handed anything Go
// could not read.
func (b *builder) clientAuthFiles(ing *networkingv1.Ingress, ref string) (certs, crl string, err error) {
	sec, key, err := b.secretRef(ing, ref, "auth-tls-secret")
	if err != nil {
		return "", "", err
	}
	raw := sec.Data["ca.crt"]
	if len(raw) == 0 {
		return "", "", fmt.Errorf("auth-tls-secret %s has no ca.crt (the PEM certificates of the CAs that sign client certificates)", key)
	}
	if certs, err = caPEM(raw, "auth-tls-secret "+key); err != nil {
		return "", "", err
	}
	if raw := sec.Data["ca.crl"]; len(raw) > 0 {
		var n int
		crl, n, err = pemBlocks(raw, "X509 CRL", func(der []byte) error { _, err := x509.ParseRevocationList(der); return err })
		if err != nil {
			return "", "", fmt.Errorf("auth-tls-secret %s: revocation list %d of ca.crl does not parse: %v", key, n, err)
		}
		if n == 0 {
			return "", "", fmt.Errorf("auth-tls-secret %s: ca.crl holds no PEM revocation list (X509 CRL)", key)
		}
	}
	return certs, crl, nil
}

// pemBlocks re-encodes the PEM blocks of type typ in raw that parse; n is
// how many there were, or the number of the first that does not parse
// (with its error). Other blocks are skipped.
func pemBlocks(raw []byte, typ string, parse func(der []byte) error) (out string, n int, err error) {
	var b strings.Builder
	for block, rest := pem.Decode(raw); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != typ {
			continue
		}
		n++
		if err := parse(block.Bytes); err != nil {
			return "", n, err
		}
		b.Write(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: block.Bytes}))
	}
	return b.String(), n, nil
}

// secretRef finds the Secret an annotation (what) names as "name" (in the
// Ingress's namespace) or "namespace/name", and returns it with its key.
func (b *builder) secretRef(ing *networkingv1.Ingress, ref, what string) (*corev1.Secret, string, error) {
	ns, name := refOf(ing, ref) // class.go
	key := ns + "/" + name
	sec := b.snap.Secret(ns, name)
	if sec == nil {
		return nil, key, errNotFound{fmt.Errorf("%s %s not found", what, key)}
	}
	return sec, key, nil
}

// caPEM re-encodes the certificates of a ca.crt (of what) that Go parses.
func caPEM(raw []byte, what string) (string, error) {
	certs, n, err := pemBlocks(raw, "CERTIFICATE", func(der []byte) error { _, err := x509.ParseCertificate(der); return err })
	if err != nil {
		return "", fmt.Errorf("%s: certificate %d of ca.crt does not parse: %v", what, n, err)
	}
	if n == 0 {
		return "", fmt.Errorf("%s: ca.crt holds no PEM certificate", what)
	}
	return certs, nil
}
