package e2e

import (
	"errors"
	"fmt"
	"net"
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

// tmpfsDir mounts a new tmpfs of size bytes, a disk that can be filled
// without touching the machine's. It needs root (CI runs as root); the test
// is skipped elsewhere.
func tmpfsDir(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fillDisk writes a file in dir until its file system is full and returns
// the function that removes it.
func fillDisk(t *testing.T, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for len(chunk) > 0 {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			chunk = chunk[:len(chunk)/2] // fill the last pages too
		}
	}
	f.Close()
	return func() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

// manyPaths are n Prefix paths /p0 ... to svc, an Ingress whose server
// block is larger than a few pages of nginx.conf.
func manyPaths(n int, svc string) []string {
	var paths []string
	for i := range n {
		paths = append(paths, fmt.Sprintf("Prefix /p%d %s", i, svc))
	}
	return paths
}

// TestReloadRetriedAfterDiskFull: an Ingress written while the working
// directory's disk is full cannot be checked nor installed; nginx keeps
// serving the last good configuration, the failure shows on /metrics,
// /healthz and the status page, and once space is back the Ingress goes
// live with no other change. It never went live before: the failure was
// taken for nginx -t refusing the structure, which is not checked again.
func TestReloadRetriedAfterDiskFull(t *testing.T) {
	be := startBackends(t, "web-1")
	tg := startTidegateWith(t, map[string]string{
		"svc.yaml": serviceYAML("web", 80) + "---\n" + sliceYAML("web-1", "web", be.Port, be.Addrs),
		"ing.yaml": ingressYAML("web", "web.test", "Prefix / web:80"),
	}, startOptions{WorkDir: tmpfsDir(t, 16<<20)})
	const ok = "nginx_ingress_controller_config_last_reload_successful"
	if v := tg.metric(ok); v != 1 {
		t.Errorf("%s = %v after the start, want 1", ok, v)
	}
	if v := tg.metric(ok + "_timestamp_seconds"); v < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("%s_timestamp_seconds = %v after the start", ok, v)
	}
	free := fillDisk(t, tg.WorkDir)
	tg.Write("new.yaml", ingressYAML("new", "new.test", manyPaths(40, "web:80")...))
	waitFor(t, 30*time.Second, "a failed reload", func() string {
		if v := tg.metric(ok); v != 0 {
			return fmt.Sprintf("%s = %v", ok, v)
		}
		return ""
	})
	code, health := tg.getStatus("/healthz")
	if code != 200 || !strings.Contains(health, "last reload: failed at ") || !strings.Contains(health, "no space left on device") {
		t.Errorf("/healthz while the disk is full: %d %q", code, health)
	}
	if _, page := tg.getStatus("/"); !strings.Contains(page, "no space left on device") || !strings.Contains(page, "next try at") {
		t.Errorf("the status page does not show the failed reload:\n%s", grepLines(page, "reload"))
	}
	if r := tg.Get("web.test", "/"); r.Status != 200 {
		t.Errorf("web.test while the disk is full: %d %q", r.Status, r.Body)
	}
	if r := tg.Get("new.test", "/p1"); r.Status != 404 {
		t.Errorf("new.test went live while the disk is full?: %d %q", r.Status, r.Body)
	}
	free()
	waitFor(t, 90*time.Second, "new.test served once space is back", func() string {
		if r := tg.Get("new.test", "/p1"); r.Status != 200 || r.Name != "web-1" {
			return fmt.Sprintf("%d %.100q", r.Status, r.Body)
		}
		return ""
	})
	// nginx serves the new configuration a moment before the controller,
	// polling its generation, records the reload.
	waitFor(t, 15*time.Second, "the retried reload recorded", func() string {
		if v := tg.metric(ok); v != 1 {
			return fmt.Sprintf("%s = %v", ok, v)
		}
		if _, health := tg.getStatus("/healthz"); !strings.Contains(health, "last reload: ok at ") {
			return fmt.Sprintf("/healthz %q", health)
		}
		return ""
	})
	t.Logf("failed reloads while the disk was full: %v", tg.metric(`tidegate_reloads_total{result="failed"}`))
}

// TestNginxRestartRetried: nginx dies while it cannot be started again
// (its disk full, then its port taken). tidegate stays up, /healthz
// answers 503 and says why, and once the cause is gone nginx serves
// again with the last good configuration. tidegate used to exit at the
// first failed restart: in a pod, a crash loop.
func TestNginxRestartRetried(t *testing.T) {
	be := startBackends(t, "web-1")
	tg := startTidegateWith(t, map[string]string{
		"svc.yaml": serviceYAML("web", 80) + "---\n" + sliceYAML("web-1", "web", be.Port, be.Addrs),
		"ing.yaml": ingressYAML("web", "web.test", "Prefix / web:80"),
	}, startOptions{WorkDir: tmpfsDir(t, 16<<20)})
	if r := tg.Get("web.test", "/"); r.Status != 200 {
		t.Fatalf("before: %d %q", r.Status, r.Body)
	}
	free := fillDisk(t, tg.WorkDir)
	old := tg.masterPID()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	failures := func(n int, cause string) func() string {
		return func() string {
			if c := strings.Count(tg.logText(), "could not start nginx again"); c < n {
				return fmt.Sprintf("%d failed restarts logged", c)
			}
			if code, health := tg.getStatus("/healthz"); code != 503 || !strings.Contains(health, "nginx is not running: ") || !strings.Contains(health, cause) {
				return fmt.Sprintf("/healthz %d %q", code, health)
			}
			return ""
		}
	}
	waitFor(t, 30*time.Second, "restarts failing on the full disk", failures(2, "no space left on device"))
	if exited, err := tg.wait(0); exited {
		t.Fatalf("tidegate exited: %v", err)
	}
	// The disk has room again, but the HTTP port is taken.
	ln, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", tg.HTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	before := strings.Count(tg.logText(), "could not start nginx again")
	free()
	waitFor(t, 60*time.Second, "restarts failing on the port", failures(before+1, "Address already in use"))
	if _, page := tg.getStatus("/"); !strings.Contains(page, "nginx is not running and could not be started again") {
		t.Errorf("the status page does not say nginx is down:\n%s", grepLines(page, "nginx"))
	}
	if exited, err := tg.wait(0); exited {
		t.Fatalf("tidegate exited: %v", err)
	}
	ln.Close()
	waitFor(t, 60*time.Second, "nginx serving again", func() string {
		if r := tg.Get("web.test", "/"); r.Status != 200 || r.Name != "web-1" {
			return fmt.Sprintf("%d %.100q", r.Status, r.Body)
		}
		if code, health := tg.getStatus("/healthz"); code != 200 {
			return fmt.Sprintf("/healthz %d %q", code, health)
		}
		return ""
	})
	if m := tg.masterPID(); m == old {
		t.Errorf("the master pid is still %d", m)
	}
	t.Logf("failed restarts: %d", strings.Count(tg.logText(), "could not start nginx again"))
}
