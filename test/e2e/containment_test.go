package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/tlsutil"
	"github.com/tidegate/tidegate/test/harness"
)

// TestBlastRadius: with 50 invalid Ingresses present, other hosts answer
// 200 throughout and a valid change to another host goes live.
func TestBlastRadius(t *testing.T) {
	be := harness.StartBackends(t, "good")
	tg := startTidegate(t, map[string]string{
		"svc.yaml":  harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		"good.yaml": harness.IngressYAML("good", "good.test", "Prefix / web:80"),
	})
	stop := tg.Hammer("good.test", 3)
	var bad []string
	hostile := []string{`/x"; return 200 pwned; #`, "/a{b}", "/a b", "/\x00", "/ok"}
	for i := 0; i < 50; i++ {
		switch i % 5 {
		case 0:
			bad = append(bad, harness.IngressYAML(fmt.Sprintf("bad-%d", i), fmt.Sprintf("bad-%d.test;", i), "Prefix / web:80"))
		case 1:
			bad = append(bad, strings.Replace(harness.IngressYAML(fmt.Sprintf("bad-%d", i), fmt.Sprintf("b%d.test", i), "ImplementationSpecific /p web:80"),
				"path: /p\n", fmt.Sprintf("path: %q\n", hostile[i%4]), 1))
		case 2:
			bad = append(bad, annotatedIngress(fmt.Sprintf("bad-%d", i), fmt.Sprintf("b%d.test", i), "Prefix", "/",
				"proxy-body-size=1m; include /etc/passwd", "rewrite-target=/$host"))
		case 3:
			bad = append(bad, harness.IngressYAML(fmt.Sprintf("bad-%d", i), fmt.Sprintf("b%d.test", i), "Prefix / missing-service:80"))
		default:
			bad = append(bad, harness.IngressYAML(fmt.Sprintf("bad-%d", i), "good.test", "Prefix / other:80")) // conflicts with the older good Ingress
		}
	}
	tg.Write("bad.yaml", strings.Join(bad, "---\n"))
	time.Sleep(300 * time.Millisecond)
	tg.Write("later.yaml", harness.IngressYAML("later", "later.test", "Prefix / web:80"))
	tg.Eventually("a valid change with 50 invalid Ingresses present", func() string {
		if r := tg.Get("later.test", "/"); r.Name != "good" {
			return fmt.Sprintf("later.test: %d %q", r.Status, r.Name)
		}
		return ""
	})
	time.Sleep(200 * time.Millisecond)
	sent, failed := stop()
	t.Logf("blast radius: %d requests to good.test while 50 invalid Ingresses were added, %d failed", sent, failed)
	if failed != 0 || sent == 0 {
		t.Errorf("%d of %d requests to the good host failed", failed, sent)
	}
	if conf := harness.ReadFile(t, filepath.Join(tg.WorkDir, "nginx.conf")); strings.Contains(conf, "pwned") || strings.Contains(conf, "/etc/passwd") {
		t.Error("hostile text reached nginx.conf")
	}
}

// pickyNginx writes an nginx wrapper that refuses `nginx -t` for any
// configuration containing marker, the way a real nginx refuses something
// tidegate's validation did not foresee; everything else runs the real
// nginx.
func pickyNginx(t *testing.T, marker string) string {
	path := filepath.Join(t.TempDir(), "nginx")
	script := fmt.Sprintf(`#!/bin/sh
for a in "$@"; do
  if [ "$a" = "-t" ]; then
    conf=""; prev=""
    for b in "$@"; do [ "$prev" = "-c" ] && conf="$b"; prev="$b"; done
    if grep -q %q "$conf"; then
      echo "nginx: [emerg] test double refuses %s in $conf" >&2
      exit 1
    fi
  fi
done
exec nginx "$@"
`, marker, marker)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestQuarantineAndLastGood: a candidate that nginx refuses is bisected; the
// Ingress responsible is set aside and everything else applies. A failure
// not caused by an Ingress keeps the last good configuration, and a restart
// comes back serving it.
func TestQuarantineAndLastGood(t *testing.T) {
	be := harness.StartBackends(t, "good")
	base := map[string]string{
		"svc.yaml":  harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		"good.yaml": harness.IngressYAML("good", "good.test", "Prefix / web:80"),
	}
	wrapper := pickyNginx(t, "refused.test")
	tg := startTidegateWith(t, base, harness.Options{Args: []string{"--nginx-binary", wrapper}})

	// One change adds a host nginx refuses and a good one.
	tg.Write("new.yaml", harness.IngressYAML("refused", "refused.test", "Prefix / web:80")+"---\n"+harness.IngressYAML("fine", "fine.test", "Prefix / web:80"))
	tg.Eventually("the good Ingress of the same change is applied", func() string {
		if r := tg.Get("fine.test", "/"); r.Name != "good" {
			return fmt.Sprintf("fine.test: %d", r.Status)
		}
		return ""
	})
	if r := tg.Get("refused.test", "/"); r.Status == 200 {
		t.Errorf("the quarantined Ingress is served")
	}
	log := harness.ReadFile(t, tg.LogPath)
	if !strings.Contains(log, "quarantined") || !strings.Contains(log, "default/refused") {
		t.Errorf("no quarantine report naming default/refused in the log")
	}

	// A refusal no Ingress explains (here: a global setting) keeps the last
	// good configuration live.
	wrapper2 := pickyNginx(t, "proxy_read_timeout 4242s")
	tg.Stop()
	tg2 := startTidegateWith(t, nil, harness.Options{Dir: tg.Dir, WorkDir: tg.WorkDir, Args: []string{"--nginx-binary", wrapper2}})
	if r := tg2.Get("fine.test", "/"); r.Name != "good" {
		t.Fatalf("after a restart: fine.test %d", r.Status)
	}
	tg2.Write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tidegate, namespace: tidegate}\ndata: {proxy-read-timeout: \"4242\"}\n")
	tg2.Write("another.yaml", harness.IngressYAML("another", "another.test", "Prefix / web:80"))
	time.Sleep(time.Second)
	if r := tg2.Get("fine.test", "/"); r.Name != "good" {
		t.Errorf("the last good configuration must stay live: fine.test %d", r.Status)
	}
	// A restart with the refused setting still present comes back serving
	// the last good nginx.conf from the working directory.
	tg2.Stop()
	tg3 := startTidegateWith(t, nil, harness.Options{Dir: tg.Dir, WorkDir: tg.WorkDir, Ports: tg2.Tidegate, Args: []string{"--nginx-binary", wrapper2}})
	if r := tg3.Get("fine.test", "/"); r.Name != "good" {
		t.Errorf("a restart must come back serving the last good configuration: fine.test %d %q", r.Status, r.Body)
	}
	if !strings.Contains(harness.ReadFile(t, tg3.LogPath), "last good nginx.conf") {
		t.Errorf("the restart does not say it serves the last good configuration")
	}
}

// TestNginxKilled: killed workers are replaced by nginx and serve the
// endpoints. When the nginx master dies without cleaning up (SIGKILL,
// the OOM killer), tidegate starts a new one with the last good
// configuration and its endpoints, although the dead master left its unix
// sockets behind and its orphaned workers still hold the ports. A restart
// of tidegate itself on the same working directory serves too.
func TestNginxKilled(t *testing.T) {
	be := harness.StartBackends(t, "web-1", "web-2")
	tg := startTidegate(t, map[string]string{
		"svc.yaml": harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		"ing.yaml": harness.IngressYAML("web", "web.test", "Prefix / web:80"),
	})
	if r := tg.Get("web.test", "/"); r.Status != 200 {
		t.Fatalf("before: %d %q", r.Status, r.Body)
	}
	master := func() int {
		b, err := os.ReadFile(filepath.Join(tg.WorkDir, "nginx.pid"))
		if err != nil {
			return 0
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return pid
	}
	// Workers killed: the master starts others, which find the endpoints
	// in shared memory (tidegate does not notice, so it pushes nothing).
	for _, pid := range tg.Workers() {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	// bothServe is "" once 20 requests all succeed, on both endpoints.
	bothServe := func() string {
		seen := map[string]bool{}
		for range 20 {
			r := tg.Get("web.test", "/")
			if r.Status != 200 {
				return fmt.Sprintf("status %d %q", r.Status, r.Body)
			}
			seen[r.Name] = true
		}
		if !seen["web-1"] || !seen["web-2"] {
			return fmt.Sprintf("served by %v", seen)
		}
		return ""
	}
	tg.Eventually("new workers serve both endpoints", bothServe)

	old := master()
	oldWorkers := tg.Workers()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	tg.Eventually("a new nginx master serves both endpoints", func() string {
		if m := master(); m == old || m == 0 {
			return fmt.Sprintf("master pid %d", m)
		}
		return bothServe()
	})
	if n := tg.Metric("tidegate_nginx_restarts_total"); n != 1 {
		t.Errorf("tidegate_nginx_restarts_total = %v, want 1", n)
	}
	// The new master's empty zones were seeded with the backends before
	// its workers served (no 503 window), and the seed is gone once the
	// push landed.
	if log := harness.ReadFile(t, filepath.Join(tg.WorkDir, "logs", "error.log")); strings.Count(log, "tidegate: seeded 1 backends") < 2 {
		t.Errorf("the first and the restarted nginx should each have been seeded:\n%s", grepLines(log, "seed"))
	}
	tg.Eventually("no seed file left once the push landed", func() string {
		if files, _ := filepath.Glob(filepath.Join(tg.WorkDir, "seed", "*")); len(files) != 0 {
			return fmt.Sprint(files)
		}
		return ""
	})
	for _, pid := range oldWorkers {
		// A zombie waits for its reaper, which is not tidegate: only a
		// running worker holds the ports.
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(b), ") Z ") {
			t.Errorf("worker %d of the killed master still runs", pid)
		}
	}

	// tidegate itself dies the same way: SIGKILL for it and its nginx.
	tg.Cmd.Process.Kill()
	_ = syscall.Kill(-master(), syscall.SIGKILL)
	tg.Wait(20 * time.Second)
	tg2 := startTidegateWith(t, nil, harness.Options{Dir: tg.Dir, WorkDir: tg.WorkDir})
	if r := tg2.Get("web.test", "/"); r.Status != 200 {
		t.Errorf("tidegate restarted on the same working directory: %d %q", r.Status, r.Body)
	}
}

// TestRefusedPushDoesNotStopTidegate: when nginx refuses the first push
// (here a wrapper shrinks the certificates dict to 1 MiB, too small for the
// certificates), tidegate keeps nginx serving what it took: the plain HTTP
// host answers, /healthz is 503 until a full push succeeds, the error says
// what to raise, and the full push is retried less and less often.
func TestRefusedPushDoesNotStopTidegate(t *testing.T) {
	be := harness.StartBackends(t, "web")
	wrapper := filepath.Join(t.TempDir(), "nginx")
	script := `#!/bin/sh
prev=""
for a in "$@"; do
  if [ "$prev" = "-c" ]; then sed -i 's/tidegate_certificates [0-9]*m;/tidegate_certificates 1m;/' "$a"; fi
  prev="$a"
done
exec nginx "$@"
`
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	crt, key, _ := tlsutil.SelfSigned("many")
	// 1,000 Ingresses, each with its own Secret: 1,000 certificates do not
	// fit in 1 MiB.
	var objs strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&objs, "---\n%s---\n%s", tlsSecretYAML(fmt.Sprintf("s-%d", i), crt, key),
			tlsIngressYAML(fmt.Sprintf("t-%d", i), fmt.Sprintf("t%d.tls.test", i), fmt.Sprintf("s-%d", i)))
	}
	tg := startTidegateWith(t, map[string]string{
		"web.yaml": harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs) + "---\n" + harness.IngressYAML("plain", "plain.test", "Prefix / web:80"),
		"tls.yaml": objs.String(),
	}, harness.Options{Args: []string{"--nginx-binary", wrapper}, Unhealthy: true})
	tg.Eventually("plain.test is served", func() string {
		if r := tg.Get("plain.test", "/"); r.Status != 200 || r.Name != "web" {
			return fmt.Sprintf("%d %q", r.Status, r.Name)
		}
		return ""
	})
	time.Sleep(12 * time.Second)
	log := tg.LogText()
	if !strings.Contains(log, "the first push failed") || !strings.Contains(log, "raise certificate_data in the ConfigMap key lua-shared-dicts") {
		t.Errorf("the log does not say the push failed and what to raise")
	}
	// Retries 1, 2, 4 and 8 s after each failure: at most 4 in 12 s (a retry
	// every second would make about 7 here).
	n := strings.Count(log, `msg="full push failed"`)
	t.Logf("full push retries in 12 s: %d", n)
	if n < 1 || n > 4 {
		t.Errorf("%d full push retries in 12 s, want 1 to 4 (backing off)", n)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", tg.StatusPt))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("/healthz %d while the certificates are not pushed, want 503", resp.StatusCode)
	}
}
