package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/tlsutil"
	"github.com/tidegate/tidegate/test/harness"
)

// testCA is a certificate authority that signs client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, cn string) testCA {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return testCA{cert: c, key: k, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// client issues a client certificate for cn.
func (ca testCA) client(t *testing.T, cn string) *tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"Example"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// caSecretYAML is a Secret with ca.crt, as ingress-nginx users keep their
// client CAs.
func caSecretYAML(name string, caPEM []byte) string {
	return opaqueSecretYAML(name, map[string]string{"ca.crt": string(caPEM)})
}

// mtlsGet sends GET https://host/ on a new connection, with SNI sni ("":
// none) and the client certificate cert (nil: none).
func (tg *tidegate) mtlsGet(sni, host string, cert *tls.Certificate) harness.Reply {
	tg.T.Helper()
	cfg := &tls.Config{ServerName: sni, InsecureSkipVerify: true}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	c := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	return tg.Do(c, "https", tg.HTTPSPort, host, "/")
}

// TestClientCertificateAuth: ingress-nginx's auth-tls-* annotations, by
// what clients and the backend see. A host that requires a client
// certificate answers 400 without one or with one from another CA, and
// passes a good one on (with ingress-nginx's ssl-client-* headers); the
// other hosts on the same listener ask for nothing. A client that sends no
// SNI cannot slip past the check through the default server, nor one that
// asks over plain http (403).
// optional lets clients without a certificate through, match-cn refuses
// other subjects, error-page redirects, a missing Secret refuses its host
// only, and a new CA in the Secret is served after the reload it needs.
func TestClientCertificateAuth(t *testing.T) {
	be := harness.StartBackends(t, "web")
	ca, other := newTestCA(t, "Example Client CA"), newTestCA(t, "Someone Else's CA")
	alice, bob, mallory := ca.client(t, "alice"), ca.client(t, "bob"), other.client(t, "alice")
	crt, key, _ := tlsutil.SelfSigned("mtls", "mtls.test", "opt.test", "cn.test", "page.test", "broken.test", "open.test")
	withTLS := func(ing, host string) string { return withTLSHost(ing, host, "server-tls") }
	docs := []string{harness.ServiceYAML("web", 80), harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		tlsSecretYAML("server-tls", crt, key), caSecretYAML("client-ca", ca.pem),
		withTLS(annotatedIngress("mtls", "mtls.test", "Prefix", "/", "auth-tls-secret=client-ca", "auth-tls-pass-certificate-to-upstream=true"), "mtls.test"),
		withTLS(annotatedIngress("opt", "opt.test", "Prefix", "/", "auth-tls-secret=client-ca", "auth-tls-verify-client=optional"), "opt.test"),
		withTLS(annotatedIngress("cn", "cn.test", "Prefix", "/", "auth-tls-secret=client-ca", "auth-tls-match-cn=CN=alice"), "cn.test"),
		withTLS(annotatedIngress("page", "page.test", "Prefix", "/", "auth-tls-secret=client-ca", "auth-tls-error-page=https://login.example.com/certificate"), "page.test"),
		withTLS(annotatedIngress("broken", "broken.test", "Prefix", "/", "auth-tls-secret=no-such-secret"), "broken.test"),
		withTLS(annotatedIngress("open", "open.test", "Prefix", "/"), "open.test"),
		annotatedIngress("nohttps", "nohttps.test", "Prefix", "/", "auth-tls-secret=client-ca"),
	}
	tg := startTidegate(t, map[string]string{"all.yaml": strings.Join(docs, "---\n")})

	if r := tg.mtlsGet("mtls.test", "mtls.test", nil); r.Status != 400 {
		t.Errorf("mtls.test without a client certificate: %d, want 400", r.Status)
	}
	if r := tg.mtlsGet("mtls.test", "mtls.test", mallory); r.Status != 400 {
		t.Errorf("mtls.test with a certificate of another CA: %d, want 400", r.Status)
	}
	r := tg.mtlsGet("mtls.test", "mtls.test", alice)
	if r.Status != 200 {
		t.Fatalf("mtls.test with alice's certificate: %d %s", r.Status, r.Body)
	}
	if v := r.Headers["Ssl-Client-Verify"]; v != "SUCCESS" {
		t.Errorf("ssl-client-verify: %q, want SUCCESS", v)
	}
	if v := r.Headers["Ssl-Client-Subject-Dn"]; !strings.Contains(v, "CN=alice") {
		t.Errorf("ssl-client-subject-dn: %q", v)
	}
	if v := r.Headers["Ssl-Client-Issuer-Dn"]; !strings.Contains(v, "CN=Example Client CA") {
		t.Errorf("ssl-client-issuer-dn: %q", v)
	}
	if v := r.Headers["Ssl-Client-Cert"]; !strings.HasPrefix(v, "-----BEGIN%20CERTIFICATE") {
		t.Errorf("ssl-client-cert (auth-tls-pass-certificate-to-upstream): %.40q", v)
	}
	// No SNI: the handshake is the default server's, which asks for no
	// certificate; the Host header still names the protected host, and
	// nginx checks that host's requirement per request.
	if r := tg.mtlsGet("", "mtls.test", alice); r.Status != 400 {
		t.Errorf("mtls.test without SNI: %d, want 400", r.Status)
	}
	if r := tg.Get("mtls.test", "/"); r.Status != 308 {
		t.Errorf("mtls.test over plain http: %d, want the 308 to https", r.Status)
	}
	// A host without spec.tls is not redirected to https: over plain http
	// there is no certificate, and tidegate refuses rather than serve it
	// unchecked.
	if r := tg.Get("nohttps.test", "/"); r.Status != 403 {
		t.Errorf("auth-tls over plain http: %d, want 403", r.Status)
	}
	if r := tg.mtlsGet("open.test", "open.test", nil); r.Status != 200 || r.Headers["Ssl-Client-Verify"] != "" {
		t.Errorf("open.test, no client authentication: %d, ssl-client-verify %q", r.Status, r.Headers["Ssl-Client-Verify"])
	}

	if r := tg.mtlsGet("opt.test", "opt.test", nil); r.Status != 200 || r.Headers["Ssl-Client-Verify"] != "NONE" {
		t.Errorf("optional, no certificate: %d, ssl-client-verify %q, want 200 and NONE", r.Status, r.Headers["Ssl-Client-Verify"])
	}
	if r := tg.mtlsGet("opt.test", "opt.test", bob); r.Status != 200 || r.Headers["Ssl-Client-Verify"] != "SUCCESS" || r.Headers["Ssl-Client-Cert"] != "" {
		t.Errorf("optional, bob: %d, ssl-client-verify %q, ssl-client-cert %.20q (not asked for)", r.Status, r.Headers["Ssl-Client-Verify"], r.Headers["Ssl-Client-Cert"])
	}
	if r := tg.mtlsGet("cn.test", "cn.test", bob); r.Status != 403 {
		t.Errorf("match-cn CN=alice, bob: %d, want 403", r.Status)
	}
	if r := tg.mtlsGet("cn.test", "cn.test", alice); r.Status != 200 {
		t.Errorf("match-cn CN=alice, alice: %d, want 200", r.Status)
	}
	if r := tg.mtlsGet("page.test", "page.test", nil); r.Status != 302 || r.Location != "https://login.example.com/certificate" {
		t.Errorf("error-page, no certificate: %d Location %q", r.Status, r.Location)
	}
	if r := tg.mtlsGet("broken.test", "broken.test", alice); r.Status != 403 {
		t.Errorf("auth-tls-secret missing: %d, want 403 (never let through unchecked)", r.Status)
	}
	if log := tg.LogText(); !strings.Contains(log, "auth-tls-secret default/no-such-secret not found") {
		t.Errorf("the missing Secret must be reported by name")
	}

	// A new CA: the Secret's content names the file, so nginx reloads
	// with it; alice's old certificate no longer passes.
	next := newTestCA(t, "Example Client CA 2")
	alice2 := next.client(t, "alice")
	tg.Write("ca.yaml", caSecretYAML("client-ca", next.pem))
	tg.Write("all.yaml", strings.Join(append(docs[:3:3], docs[4:]...), "---\n"))
	tg.Eventually("a certificate of the new CA passes", func() string {
		if r := tg.mtlsGet("mtls.test", "mtls.test", alice2); r.Status != 200 {
			return fmt.Sprint(r.Status)
		}
		return ""
	})
	// Workers of the old configuration may take a connection or two
	// until they have closed their listeners.
	tg.Eventually("a certificate of the replaced CA is refused", func() string {
		if r := tg.mtlsGet("mtls.test", "mtls.test", alice); r.Status != 400 {
			return fmt.Sprint(r.Status)
		}
		return ""
	})
}
