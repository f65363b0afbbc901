package e2e

import (
	"encoding/pem"
	"strings"
	"testing"

	"github.com/tidegate/tidegate/pkg/tlsutil"
	"github.com/tidegate/tidegate/test/harness"
)

// TestBrokenChainIsContained: a Secret whose chain carries a block OpenSSL
// cannot parse (Go's key-pair check reads only the leaf) is reported and
// served with the default certificate; the other hosts keep theirs, at start
// and when it arrives later.
func TestBrokenChainIsContained(t *testing.T) {
	be := harness.StartBackends(t, "web")
	good, goodKey, _ := tlsutil.SelfSigned("good.test", "good.test")
	bad, badKey, _ := tlsutil.SelfSigned("bad.test", "bad.test")
	bad = append(bad, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not a certificate at all")})...)
	ing := tlsIngressYAML
	tg := startTidegate(t, map[string]string{
		"web.yaml":  harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		"good.yaml": tlsSecretYAML("good-tls", good, goodKey) + "---\n" + ing("good", "good.test", "good-tls"),
		"bad.yaml":  tlsSecretYAML("bad-tls", bad, badKey) + "---\n" + ing("bad", "bad.test", "bad-tls"),
	})
	if _, cn, _ := tg.GetTLS("good.test", "/"); cn != "good.test" {
		t.Errorf("good.test served %q", cn)
	}
	if _, cn, _ := tg.GetTLS("bad.test", "/"); cn != "tidegate default certificate" {
		t.Errorf("bad.test served %q, want the default certificate", cn)
	}
	if log := tg.LogText(); !strings.Contains(log, "default/bad-tls") || !strings.Contains(log, "certificate 2 of the chain does not parse") {
		t.Errorf("the log does not name default/bad-tls and its broken chain")
	}

	// Later, in one change: another broken Secret and a new good host.
	late, lateKey, _ := tlsutil.SelfSigned("late.test", "late.test")
	tg.Write("late.yaml", tlsSecretYAML("bad2-tls", bad, badKey)+"---\n"+ing("bad2", "bad2.test", "bad2-tls")+"---\n"+
		tlsSecretYAML("late-tls", late, lateKey)+"---\n"+ing("late", "late.test", "late-tls"))
	tg.Eventually("the new good host gets its certificate", func() string {
		if _, cn, _ := tg.GetTLS("late.test", "/"); cn != "late.test" {
			return "late.test served " + cn
		}
		return ""
	})
	for host, want := range map[string]string{"good.test": "good.test", "bad2.test": "tidegate default certificate"} {
		if _, cn, _ := tg.GetTLS(host, "/"); cn != want {
			t.Errorf("%s served %q, want %q", host, cn, want)
		}
	}
}
