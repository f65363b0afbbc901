package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/tlsutil"
	"github.com/tidegate/tidegate/test/harness"
)

// tlsIngressYAML is an Ingress serving host over TLS with secret, to the
// Service web:80.
func tlsIngressYAML(name, host, secret string) string {
	return "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: " + name + "}\nspec:\n  ingressClassName: tidegate\n" +
		"  tls: [{hosts: [" + host + "], secretName: " + secret + "}]\n  rules:\n  - host: " + host + "\n" +
		"    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}\n"
}

// chainAndKey returns a PEM chain (leaf and issuer) and an RSA-2048 key of
// the sizes cert-manager and Let's Encrypt produce: 2.3 KiB and 1.7 KiB.
func chainAndKey(t *testing.T, cn string) (chain, key []byte) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Example Issuing CA R3", Organization: []string{"Example Trust"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	issuer, _ := x509.ParseCertificate(caDER)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn}, DNSNames: []string{"*.tenants.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, leaf, issuer, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	chain = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	key = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	return chain, key
}

// TestManyCertificates: 5,000 TLS hosts, each with its own Secret of a
// realistic size, are all served with their certificate (the first
// certificates dict, 16 MiB, held about 2,500; tidegate then refused to
// start). Raising certificate_data in lua-shared-dicts reloads nginx with a
// new, empty dict, and every certificate and backend is pushed again before
// the reload is reported done.
func TestManyCertificates(t *testing.T) {
	const n = 5000
	be := harness.StartBackends(t, "tenant")
	chain, key := chainAndKey(t, "tenant certificate")
	var secrets, ingresses strings.Builder
	for i := range n {
		fmt.Fprintf(&secrets, "---\n%s", tlsSecretYAML(fmt.Sprintf("tls-%d", i), chain, key))
		fmt.Fprintf(&ingresses, "---\n%s", tlsIngressYAML(fmt.Sprintf("t-%d", i), fmt.Sprintf("t%d.tenants.test", i), fmt.Sprintf("tls-%d", i)))
	}
	t.Logf("%d Secrets: %d MiB of YAML", n, secrets.Len()>>20)
	tg := startTidegate(t, map[string]string{
		"web.yaml":       harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		"secrets.yaml":   secrets.String(),
		"ingresses.yaml": ingresses.String(),
	})
	check := func(when string) {
		t.Helper()
		for _, i := range []int{0, n / 2, n - 1} {
			host := fmt.Sprintf("t%d.tenants.test", i)
			if r, cn, _ := tg.GetTLS(host, "/"); cn != "tenant certificate" || r.Status != 200 || r.Name != "tenant" {
				t.Errorf("%s: %s served certificate %q and %d %q, want its own certificate and the backend", when, host, cn, r.Status, r.Name)
			}
		}
	}
	check("at start")

	reloaded := strings.Count(tg.LogText(), `msg="nginx reloaded"`)
	tg.Write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tidegate, namespace: tidegate}\n"+
		"data: {lua-shared-dicts: \"certificate_data: 512, configuration_data: 96\"}\n")
	tg.Eventually("the resize reload", func() string {
		if got := strings.Count(tg.LogText(), `msg="nginx reloaded"`); got == reloaded {
			return "no reload logged"
		}
		return ""
	})
	check("right after the resize")
	conf := harness.ReadFile(t, filepath.Join(tg.WorkDir, "nginx.conf"))
	for _, want := range []string{"lua_shared_dict tidegate_certificates 512m;", "lua_shared_dict tidegate_backends 96m;"} {
		if !strings.Contains(conf, want) {
			t.Errorf("nginx.conf has no %q", want)
		}
	}
}

// TestWildcardSecretSharedByManyHosts: one wildcard Secret used by 1,500
// Ingresses, one tenant host each (a common SaaS layout), serves every host
// with it. nginx used to refuse a certificate of more than 1,000 hosts, and
// with it the whole certificates push: tidegate exited at start.
func TestWildcardSecretSharedByManyHosts(t *testing.T) {
	const n = 1500
	be := harness.StartBackends(t, "tenant")
	crt, key, err := tlsutil.SelfSigned("tenants wildcard", "*.tenants.test")
	if err != nil {
		t.Fatal(err)
	}
	var ingresses strings.Builder
	for i := range n {
		fmt.Fprintf(&ingresses, "---\n%s", tlsIngressYAML(fmt.Sprintf("t-%d", i), fmt.Sprintf("t%d.tenants.test", i), "wildcard"))
	}
	tg := startTidegate(t, map[string]string{
		"web.yaml":       harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		"secret.yaml":    tlsSecretYAML("wildcard", crt, key),
		"ingresses.yaml": ingresses.String(),
	})
	for _, i := range []int{0, n / 2, n - 1} {
		host := fmt.Sprintf("t%d.tenants.test", i)
		if r, cn, _ := tg.GetTLS(host, "/"); cn != "tenants wildcard" || r.Status != 200 {
			t.Errorf("%s: certificate %q, status %d; want the wildcard and 200", host, cn, r.Status)
		}
	}
}

// TestDefaultSSLCertificate: --default-ssl-certificate (ingress-nginx's
// flag) is served for unknown names, clients without SNI, TLS hosts without
// a secretName and TLS hosts whose Secret is missing; a host with its own
// Secret keeps it; renewing the default Secret is a push, not a reload.
func TestDefaultSSLCertificate(t *testing.T) {
	be := harness.StartBackends(t, "web")
	wild, wildKey, _ := tlsutil.SelfSigned("default wildcard", "*.example.test")
	own, ownKey, _ := tlsutil.SelfSigned("own.example.test", "own.example.test")
	noSecret := strings.Replace(tlsIngressYAML("nosecret", "nosecret.example.test", "x"), ", secretName: x", "", 1)
	tg := startTidegateWith(t, map[string]string{
		"web.yaml":     harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		"secrets.yaml": tlsSecretYAML("wild", wild, wildKey) + "---\n" + tlsSecretYAML("own", own, ownKey),
		"ing.yaml": tlsIngressYAML("own", "own.example.test", "own") + "---\n" + noSecret + "---\n" +
			tlsIngressYAML("broken", "broken.example.test", "missing"),
	}, harness.Options{Args: []string{"--default-ssl-certificate", "default/wild"}})
	for sni, want := range map[string]string{
		"own.example.test":      "own.example.test",
		"nosecret.example.test": "default wildcard",
		"broken.example.test":   "default wildcard",
		"unknown.test":          "default wildcard",
		"":                      "default wildcard", // no SNI
	} {
		r, cn, _ := tg.GetTLS(sni, "/")
		if cn != want {
			t.Errorf("SNI %q: certificate %q, want %q", sni, cn, want)
		}
		if strings.HasSuffix(sni, ".example.test") && r.Status != 200 {
			t.Errorf("SNI %q: status %d", sni, r.Status)
		}
	}
	reloads := tg.SettledReloads()
	renewed, renewedKey, _ := tlsutil.SelfSigned("renewed default", "*.example.test")
	tg.Write("secrets.yaml", tlsSecretYAML("wild", renewed, renewedKey)+"---\n"+tlsSecretYAML("own", own, ownKey))
	tg.Eventually("the renewed default certificate", func() string {
		if _, cn, _ := tg.GetTLS("unknown.test", "/"); cn != "renewed default" {
			return cn
		}
		return ""
	})
	if n := tg.Reloads(); n != reloads {
		t.Errorf("reloads went from %d to %d: renewing the default certificate must be a push", reloads, n)
	}
}
