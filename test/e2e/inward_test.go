package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/test/harness"
)

// TestIngressCannotReachTheControlSocket is the audit's attack, end to end
// with the real binary: an Ingress author points auth-url and mirror-target
// at tidegate's control socket ("http://unix:SOCKET:/configuration/
// backends"; nginx's proxy_pass with a variable connects to unix sockets)
// and sends, through their own host, a push that moves another tenant's
// host to their backend. The URLs are refused and reported, the auth-url
// host fails closed, and the other tenant keeps its backend.
func TestIngressCannotReachTheControlSocket(t *testing.T) {
	be := harness.StartBackends(t, "victim", "evil")
	victimIP, evilIP := be.Addrs[0], be.Addrs[1]
	workdir := t.TempDir()
	sock := filepath.Join(workdir, "run", "tidegate.sock")
	tg := startTidegateWith(t, map[string]string{"all.yaml": strings.Join([]string{
		harness.ServiceYAML("victim", 80), harness.SliceYAML("victim-1", "victim", be.Port, []string{victimIP}),
		harness.ServiceYAML("web", 80), harness.SliceYAML("web-1", "web", be.Port, []string{evilIP}), // the attacker's
		harness.IngressYAML("victim", "victim.test", "Prefix / victim:80"),
		annotatedIngress("by-auth", "auth.evil.test", "Prefix", "/", "auth-url=http://unix:"+sock+":/configuration/backends", "auth-method=POST"),
		annotatedIngress("by-mirror", "mirror.evil.test", "Prefix", "/", "mirror-target=http://unix:"+sock+":/configuration/backends"),
		annotatedIngress("by-case", "case.evil.test", "Prefix", "/", "mirror-target=http://UNIX:"+sock+":/configuration/certificates"),
	}, "---\n")}, harness.Options{WorkDir: workdir})

	if r := tg.Get("victim.test", "/"); r.Status != 200 || r.Name != "victim" {
		t.Fatalf("before the attack victim.test: %d from %q", r.Status, r.Name)
	}
	// The push the attacker would make: victim's backend to the evil pod,
	// at a version above anything the controller has pushed.
	hijack, err := json.Marshal(map[string]any{"version": 1 << 50, "full": false, "removed": []string{},
		"backends": []model.Backend{{Name: "default/victim:80", Algorithm: "round_robin",
			Endpoints: []model.Endpoint{{Address: evilIP, Port: int32(be.Port), Weight: 1}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if st := tg.Post("auth.evil.test", "/", string(hijack)); st != 403 {
		t.Errorf("auth.evil.test: %d, want 403 (a refused auth-url refuses every request)", st)
	}
	for _, host := range []string{"mirror.evil.test", "case.evil.test"} {
		if st := tg.Post(host, "/", string(hijack)); st != 200 {
			t.Errorf("%s: %d, want the backend's 200 (served, without the refused mirror)", host, st)
		}
	}
	for i := 0; i < 20; i++ {
		if r := tg.Get("victim.test", "/"); r.Status != 200 || r.Name != "victim" {
			t.Fatalf("after the attack victim.test: %d from %q, want the victim backend", r.Status, r.Name)
		}
	}
	logs := tg.LogText()
	for _, ing := range []string{"default/by-auth", "default/by-mirror", "default/by-case"} {
		if !strings.Contains(logs, fmt.Sprintf("object=%s", ing)) || !strings.Contains(logs, "unix socket") {
			t.Errorf("the refusal of %s is not reported (object=%s, \"unix socket\") in the log", ing, ing)
		}
	}
	conf := harness.ReadFile(t, filepath.Join(workdir, "nginx.conf"))
	if strings.Contains(strings.ToLower(conf), "http://unix:") {
		t.Errorf("nginx.conf proxies to a unix socket URL")
	}
}
