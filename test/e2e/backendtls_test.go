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
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/test/harness"
)

// server issues a server certificate for names.
func (ca testCA) server(t *testing.T, names ...string) *tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// pemPair encodes a certificate and its key as tls.crt and tls.key hold them.
func pemPair(t *testing.T, c *tls.Certificate) (crt, key string) {
	t.Helper()
	k, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}))
}

// TestBackendTLS: proxy-ssl-secret gives nginx a client certificate for an
// HTTPS backend that requires one, and with proxy-ssl-verify the CAs to
// check the backend's certificate against. Without the client certificate
// the backend refuses the handshake (502); with the wrong CAs nginx
// refuses the backend (502).
func TestBackendTLS(t *testing.T) {
	ca, other := newTestCA(t, "Backend CA"), newTestCA(t, "Other CA")
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend saw client %s", r.TLS.PeerCertificates[0].Subject.CommonName)
	}), TLSConfig: &tls.Config{Certificates: []tls.Certificate{*ca.server(t, "backend.internal")}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port

	crt, key := pemPair(t, ca.client(t, "tidegate"))
	secret := func(name string, caPEM []byte) string {
		return opaqueSecretYAML(name, map[string]string{"ca.crt": string(caPEM), "tls.crt": crt, "tls.key": key})
	}
	https := []string{"backend-protocol=HTTPS", "proxy-ssl-server-name=on", "proxy-ssl-name=backend.internal"}
	ing := func(name, host string, anns ...string) string {
		return annotatedIngress(name, host, "Prefix", "/", append(append([]string{}, https...), anns...)...)
	}
	tg := startTidegate(t, map[string]string{"all.yaml": strings.Join([]string{
		harness.ServiceYAML("web", 80), harness.SliceYAML("web-1", "web", port, []string{"127.0.0.1"}),
		secret("backend-tls", ca.pem), secret("other-tls", other.pem),
		ing("verified", "verified.test", "proxy-ssl-secret=backend-tls", "proxy-ssl-verify=on", "proxy-ssl-protocols=TLSv1.2 TLSv1.3"),
		ing("plain", "plain.test"),
		ing("wrongca", "wrongca.test", "proxy-ssl-secret=other-tls", "proxy-ssl-verify=on"),
		ing("noca", "noca.test", "proxy-ssl-verify=on"),
	}, "---\n")})
	for host, want := range map[string]int{"verified.test": 200, "plain.test": 502, "wrongca.test": 502, "noca.test": 403} {
		resp, body, err := tg.Fresh(host, "/")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != want {
			t.Errorf("%s: %d %q, want %d", host, resp.StatusCode, body, want)
		}
		if want == 200 && body != "backend saw client tidegate" {
			t.Errorf("%s: %q", host, body)
		}
	}
	if log := tg.LogText(); !strings.Contains(log, "proxy-ssl-verify needs proxy-ssl-secret") {
		t.Errorf("proxy-ssl-verify without a Secret must be reported")
	}
	// The verified location and the plain one reach the same endpoint: each
	// has its own keepalive pool, so a connection opened with the client
	// certificate never serves the plain location.
	for i := 0; i < 3; i++ {
		for host, want := range map[string]int{"verified.test": 200, "plain.test": 502} {
			if r := tg.Get(host, "/"); r.Status != want {
				t.Errorf("kept-alive round %d, %s: %d, want %d", i, host, r.Status, want)
			}
		}
	}
}
