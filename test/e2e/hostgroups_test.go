package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/test/harness"
)

// TestSharedServerBlocks: hosts that render alike share one nginx server
// block (pkg/nginx/hostgroups.go). What a user sees must not change: every
// host reaches its own Service, is counted under its own host and Ingress,
// a host with a setting of its own keeps its own block, endpoint moves still
// never reload, and adding a host of the same shape is a reload that serves
// it.
func TestSharedServerBlocks(t *testing.T) {
	names := []string{"one", "two", "three", "default"}
	files := map[string]string{}
	bs := map[string]*harness.Backends{}
	for _, n := range names {
		b := harness.StartBackends(t, n+"-1", n+"-2")
		bs[n] = b
		host := n + ".shared.test"
		if n == "default" {
			host = "default" // a host spelled like a map keyword
		}
		files[n+".yaml"] = harness.ServiceYAML(n, 80) + "---\n" + harness.SliceYAML(n+"-1", n, b.Port, b.Addrs) + "---\n" +
			harness.IngressYAML(n, host, "Prefix / "+n+":80")
	}
	// The same shape with a location setting of its own: not shared.
	odd := harness.StartBackends(t, "odd")
	files["odd.yaml"] = harness.ServiceYAML("odd", 80) + "---\n" + harness.SliceYAML("odd-1", "odd", odd.Port, odd.Addrs) + "---\n" +
		strings.Replace(harness.IngressYAML("odd", "odd.shared.test", "Prefix / odd:80"), "  name: odd\n",
			"  name: odd\n  annotations: {nginx.ingress.kubernetes.io/proxy-read-timeout: \"7\"}\n", 1)
	tg := startTidegate(t, files)

	conf := harness.ReadFile(t, filepath.Join(tg.WorkDir, "nginx.conf"))
	if n := strings.Count(conf, `server_name "two.shared.test";`); n != 1 {
		t.Fatalf("two.shared.test named %d times in nginx.conf", n)
	}
	if !strings.Contains(conf, "set $tidegate_vhost $host;") {
		t.Fatalf("no shared server block in nginx.conf:\n%s", conf)
	}

	host := func(n string) string {
		if n == "default" {
			return "default"
		}
		return n + ".shared.test"
	}
	for _, n := range names {
		got := counts(tg, host(n), "/x", 8)
		if got[n+"-1"]+got[n+"-2"] != 8 || got[n+"-1"] == 0 || got[n+"-2"] == 0 {
			t.Errorf("%s: answers %v, want both of %s-1 and %s-2 only", host(n), got, n, n)
		}
	}
	if r := tg.Get("TWO.Shared.Test.:8080", "/"); r.Status != 200 || !strings.HasPrefix(r.Name, "two-") {
		t.Errorf("upper-case host with port and trailing dot: got %d from %q, want two-*", r.Status, r.Name)
	}
	if r := tg.Get("odd.shared.test", "/"); r.Status != 200 || r.Name != "odd" {
		t.Errorf("odd.shared.test: got %d from %q", r.Status, r.Name)
	}

	// Each host is counted under its own host, Ingress and Service.
	tg.Eventually("per-host request counts", func() string {
		samples := tg.scrape()
		for _, n := range names {
			want := 8.0
			if n == "two" {
				want = 9
			}
			l := lbl("namespace", "default", "ingress", n, "service", n, "host", host(n), "path", "/", "status", "200")
			if got, _ := sum(samples, "nginx_ingress_controller_requests", l); got != want {
				return fmt.Sprintf("%v = %v, want %v", l, got, want)
			}
		}
		return ""
	})

	// Endpoints of a host in a shared block move without a reload.
	reloads := tg.SettledReloads()
	workers := tg.Workers()
	moved := harness.StartBackends(t, "two-moved")
	tg.Write("two.yaml", harness.ServiceYAML("two", 80)+"---\n"+harness.SliceYAML("two-1", "two", moved.Port, moved.Addrs)+"---\n"+
		harness.IngressYAML("two", "two.shared.test", "Prefix / two:80"))
	tg.Eventually("two.shared.test served by two-moved", func() string {
		if r := tg.Get("two.shared.test", "/"); r.Name != "two-moved" {
			return "got " + r.Name
		}
		return ""
	})
	if tg.Reloads() != reloads || fmt.Sprint(tg.Workers()) != fmt.Sprint(workers) {
		t.Errorf("an endpoint move in a shared block reloaded nginx")
	}

	// A new host of the same shape joins the block: a reload, then served.
	four := harness.StartBackends(t, "four")
	tg.Write("four.yaml", harness.ServiceYAML("four", 80)+"---\n"+harness.SliceYAML("four-1", "four", four.Port, four.Addrs)+"---\n"+
		harness.IngressYAML("four", "four.shared.test", "Prefix / four:80"))
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := tg.Get("four.shared.test", "/")
		if r.Status == 200 && r.Name == "four" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("four.shared.test never served: last %d %q", r.Status, r.Name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// the reload is counted once nginx serves the new generation
	tg.Eventually("the new host counted as a reload", func() string {
		if tg.Reloads() == reloads {
			return "no reload counted"
		}
		return ""
	})
	if r := tg.Get("one.shared.test", "/"); r.Status != 200 || !strings.HasPrefix(r.Name, "one-") {
		t.Errorf("one.shared.test after the reload: got %d from %q", r.Status, r.Name)
	}
}
