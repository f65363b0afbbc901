package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// masterPID reads the nginx master's pid from the working directory (0 if
// there is none).
func (tg *tidegate) masterPID() int {
	b, err := os.ReadFile(filepath.Join(tg.WorkDir, "nginx.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// TestSIGHUPResyncs: SIGHUP, which daemons take as "reload your
// configuration", makes tidegate resync; it used to end tidegate and nginx
// with it (Go's default for SIGHUP).
func TestSIGHUPResyncs(t *testing.T) {
	be := startBackends(t, "web-1")
	tg := startTidegate(t, map[string]string{
		"svc.yaml": serviceYAML("web", 80) + "---\n" + sliceYAML("web-1", "web", be.Port, be.Addrs),
		"ing.yaml": ingressYAML("web", "web.test", "Prefix / web:80"),
	})
	if r := tg.Get("web.test", "/"); r.Status != 200 {
		t.Fatalf("before: %d %q", r.Status, r.Body)
	}
	master := tg.masterPID()
	for i := 1; i <= 2; i++ {
		if err := tg.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 15*time.Second, "a resync", func() string {
			if n := tg.metric("tidegate_resyncs_total"); n != float64(i) {
				return fmt.Sprintf("tidegate_resyncs_total %v", n)
			}
			return ""
		})
	}
	if exited, err := tg.wait(0); exited {
		t.Fatalf("tidegate exited on SIGHUP: %v", err)
	}
	if r := tg.Get("web.test", "/"); r.Status != 200 || r.Name != "web-1" {
		t.Fatalf("after SIGHUP: %d %q", r.Status, r.Body)
	}
	if m := tg.masterPID(); m != master || syscall.Kill(m, 0) != nil {
		t.Errorf("nginx master %d after SIGHUP, want the same %d, alive", m, master)
	}
	if !strings.Contains(tg.logText(), "SIGHUP: resyncing") {
		t.Errorf("no resync logged:\n%s", grepLines(tg.logText(), "resync"))
	}
}
