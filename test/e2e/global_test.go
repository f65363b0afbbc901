package e2e

import (
	"compress/gzip"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/tlsutil"
)

// TestGlobalSettings checks ConfigMap keys by their effect: HSTS on HTTPS
// answers only, gzip, the full X-Forwarded-For chain, and an unknown key
// reported.
func TestGlobalSettings(t *testing.T) {
	be := startBackends(t, "web")
	crt, key, _ := tlsutil.SelfSigned("g.test", "g.test")
	tg := startTidegate(t, map[string]string{
		"all.yaml": strings.Join([]string{serviceYAML("web", 80), sliceYAML("web-1", "web", be.Port, be.Addrs),
			tlsSecretYAML("g-tls", crt, key),
			strings.Replace(ingressYAML("g", "g.test", "Prefix / web:80"), "  rules:", "  tls: [{hosts: [g.test], secretName: g-tls}]\n  rules:", 1),
			ingressYAML("plain", "plain.test", "Prefix / web:80"),
			`apiVersion: v1
kind: ConfigMap
metadata: {name: tidegate, namespace: tidegate}
data:
  hsts-max-age: "600"
  hsts-include-subdomains: "false"
  use-gzip: "true"
  compute-full-forwarded-for: "true"
  proxy-bodysize: "1m"
`}, "---\n"),
	})
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableCompression: true,
		TLSClientConfig: &tls.Config{ServerName: "g.test", InsecureSkipVerify: true}}}
	req, _ := http.NewRequest("GET", fmt.Sprintf("https://127.0.0.1:%d/", tg.HTTPSPort), nil)
	req.Host = "g.test"
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=600" {
		t.Errorf("HSTS over https: %q, want max-age=600", got)
	}
	if got := resp.Header.Get("Content-Encoding"); got != "gzip" {
		t.Errorf("use-gzip: Content-Encoding %q", got)
	} else if zr, err := gzip.NewReader(resp.Body); err == nil {
		zr.Close()
	}
	plain, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", tg.HTTPPort), nil)
	plain.Host = "plain.test"
	plain.Header.Set("X-Forwarded-For", "203.0.113.7")
	r2, err := tg.client.Do(plain)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(r2)
	if r2.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("HSTS must not be sent over plain http")
	}
	if !strings.Contains(body, `"X-Forwarded-For":"203.0.113.7, 127.0.0.1"`) {
		t.Errorf("compute-full-forwarded-for: backend saw %s", body)
	}
	if log := readFile(t, tg.logPath); !strings.Contains(log, "data.proxy-bodysize") || !strings.Contains(log, "check the spelling") {
		t.Errorf("an unknown ConfigMap key must be reported")
	}
}
