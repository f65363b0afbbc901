package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tidegate/tidegate/test/harness"
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
	be := harness.StartBackends(t, "web-1")
	tg := startTidegate(t, map[string]string{
		"svc.yaml": harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		"ing.yaml": harness.IngressYAML("web", "web.test", "Prefix / web:80"),
	})
	if r := tg.Get("web.test", "/"); r.Status != 200 {
		t.Fatalf("before: %d %q", r.Status, r.Body)
	}
	master := tg.masterPID()
	for i := 1; i <= 2; i++ {
		if err := tg.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		harness.WaitFor(t, 15*time.Second, "a resync", func() string {
			if n := tg.Metric("tidegate_resyncs_total"); n != float64(i) {
				return fmt.Sprintf("tidegate_resyncs_total %v", n)
			}
			return ""
		})
	}
	if exited, err := tg.Wait(0); exited {
		t.Fatalf("tidegate exited on SIGHUP: %v", err)
	}
	if r := tg.Get("web.test", "/"); r.Status != 200 || r.Name != "web-1" {
		t.Fatalf("after SIGHUP: %d %q", r.Status, r.Body)
	}
	if m := tg.masterPID(); m != master || syscall.Kill(m, 0) != nil {
		t.Errorf("nginx master %d after SIGHUP, want the same %d, alive", m, master)
	}
	if !strings.Contains(tg.LogText(), "SIGHUP: resyncing") {
		t.Errorf("no resync logged:\n%s", grepLines(tg.LogText(), "resync"))
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
	be := harness.StartBackends(t, "web-1")
	tg := startTidegateWith(t, map[string]string{
		"svc.yaml": harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		"ing.yaml": harness.IngressYAML("web", "web.test", "Prefix / web:80"),
	}, harness.Options{WorkDir: tmpfsDir(t, 16<<20)})
	const ok = "nginx_ingress_controller_config_last_reload_successful"
	if v := tg.Metric(ok); v != 1 {
		t.Errorf("%s = %v after the start, want 1", ok, v)
	}
	if v := tg.Metric(ok + "_timestamp_seconds"); v < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("%s_timestamp_seconds = %v after the start", ok, v)
	}
	free := fillDisk(t, tg.WorkDir)
	tg.Write("new.yaml", harness.IngressYAML("new", "new.test", manyPaths(40, "web:80")...))
	harness.WaitFor(t, 30*time.Second, "a failed reload", func() string {
		if v := tg.Metric(ok); v != 0 {
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
	harness.WaitFor(t, 90*time.Second, "new.test served once space is back", func() string {
		if r := tg.Get("new.test", "/p1"); r.Status != 200 || r.Name != "web-1" {
			return fmt.Sprintf("%d %.100q", r.Status, r.Body)
		}
		return ""
	})
	// nginx serves the new configuration a moment before the controller,
	// polling its generation, records the reload.
	harness.WaitFor(t, 15*time.Second, "the retried reload recorded", func() string {
		if v := tg.Metric(ok); v != 1 {
			return fmt.Sprintf("%s = %v", ok, v)
		}
		if _, health := tg.getStatus("/healthz"); !strings.Contains(health, "last reload: ok at ") {
			return fmt.Sprintf("/healthz %q", health)
		}
		return ""
	})
	t.Logf("failed reloads while the disk was full: %v", tg.Metric(`tidegate_reloads_total{result="failed"}`))
}

// TestNginxRestartRetried: nginx dies while it cannot be started again
// (its disk full, then its port taken). tidegate stays up, /healthz
// answers 503 and says why, and once the cause is gone nginx serves
// again with the last good configuration. tidegate used to exit at the
// first failed restart: in a pod, a crash loop.
func TestNginxRestartRetried(t *testing.T) {
	be := harness.StartBackends(t, "web-1")
	tg := startTidegateWith(t, map[string]string{
		"svc.yaml": harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		"ing.yaml": harness.IngressYAML("web", "web.test", "Prefix / web:80"),
	}, harness.Options{WorkDir: tmpfsDir(t, 16<<20)})
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
			if c := strings.Count(tg.LogText(), "could not start nginx again"); c < n {
				return fmt.Sprintf("%d failed restarts logged", c)
			}
			if code, health := tg.getStatus("/healthz"); code != 503 || !strings.Contains(health, "nginx is not running: ") || !strings.Contains(health, cause) {
				return fmt.Sprintf("/healthz %d %q", code, health)
			}
			return ""
		}
	}
	harness.WaitFor(t, 30*time.Second, "restarts failing on the full disk", failures(2, "no space left on device"))
	if exited, err := tg.Wait(0); exited {
		t.Fatalf("tidegate exited: %v", err)
	}
	// The disk has room again, but the HTTP port is taken.
	ln, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", tg.HTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	before := strings.Count(tg.LogText(), "could not start nginx again")
	free()
	harness.WaitFor(t, 60*time.Second, "restarts failing on the port", failures(before+1, "Address already in use"))
	if _, page := tg.getStatus("/"); !strings.Contains(page, "nginx is not running and could not be started again") {
		t.Errorf("the status page does not say nginx is down:\n%s", grepLines(page, "nginx"))
	}
	if exited, err := tg.Wait(0); exited {
		t.Fatalf("tidegate exited: %v", err)
	}
	ln.Close()
	harness.WaitFor(t, 60*time.Second, "nginx serving again", func() string {
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
	t.Logf("failed restarts: %d", strings.Count(tg.LogText(), "could not start nginx again"))
}

// load sends GET requests to host at about rate per second (from a few
// goroutines on kept-alive connections) until stop is called or limit
// requests were sent; stop reports how many were sent and how many failed
// (any status but 200, the first few logged).
func (tg *tidegate) load(host string, rate, limit int) (sentSoFar func() int64, stop func() (sent, failed int64)) {
	var sentN, failedN atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	const workers = 4
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second * workers / time.Duration(rate))
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
				}
				if sentN.Add(1) > int64(limit) {
					sentN.Add(-1)
					return
				}
				if r := tg.Do(client, "http", tg.HTTPPort, host, "/"); r.Status != 200 {
					if failedN.Add(1) <= 3 {
						tg.T.Logf("failed request to %s: %d %.200s", host, r.Status, r.Body)
					}
				}
			}
		}()
	}
	return sentN.Load, func() (int64, int64) {
		close(done)
		wg.Wait()
		return sentN.Load(), failedN.Load()
	}
}

// TestControllerKilledUnderLoad: tidegate is killed (SIGKILL) while
// requests flow at a steady rate; nginx serves on without it, and a
// tidegate started again on the same working directory adopts the same
// nginx master (no reload: its configuration is the same), after which an
// endpoint change is pushed without a reload. Not one request fails. nginx
// used to die with tidegate (parent-death signal) and the restarted
// tidegate started another: 556 failed requests in the audit.
func TestControllerKilledUnderLoad(t *testing.T) {
	be := harness.StartBackends(t, "web-1", "web-2")
	tg := startTidegate(t, map[string]string{
		"svc.yaml": harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs[:1]),
		"ing.yaml": harness.IngressYAML("web", "web.test", "Prefix / web:80"),
	})
	master := tg.masterPID()
	sent, stop := tg.load("web.test", 300, 60*300)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	atLeast := func(n int64) func() string {
		return func() string {
			if s := sent(); s < n {
				return fmt.Sprintf("%d requests sent", s)
			}
			return ""
		}
	}
	harness.WaitFor(t, 30*time.Second, "load before the kill", atLeast(300))
	if err := tg.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if exited, _ := tg.Wait(20 * time.Second); !exited {
		t.Fatal("tidegate did not die")
	}
	killed := time.Now()
	harness.WaitFor(t, 30*time.Second, "load while tidegate is dead", atLeast(sent()+300))
	alone := time.Since(killed)
	// As if tidegate had died between writing a seed and its push: the
	// seed may hold private keys, and the adopting tidegate removes it.
	seed := filepath.Join(tg.WorkDir, "seed", "backends.lines")
	if err := os.MkdirAll(filepath.Dir(seed), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(seed, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	begin := time.Now()
	tg2 := startTidegateWith(t, nil, harness.Options{Dir: tg.Dir, WorkDir: tg.WorkDir, Ports: tg.Tidegate})
	adopt := time.Since(begin)
	if m := tg2.masterPID(); m != master {
		t.Errorf("nginx master %d after the restart, want the same %d", m, master)
	}
	if n := tg2.Metric("tidegate_nginx_adoptions_total"); n != 1 {
		t.Errorf("tidegate_nginx_adoptions_total = %v, want 1", n)
	}
	if _, err := os.Stat(seed); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the seed a dead tidegate left is still there: %v", err)
	}
	if n := tg2.SettledReloads(); n != 0 {
		t.Errorf("%d reloads after adopting an nginx serving the same configuration", n)
	}
	workers := tg2.Workers()
	tg2.Write("svc.yaml", harness.ServiceYAML("web", 80)+"---\n"+harness.SliceYAML("web-1", "web", be.Port, be.Addrs[1:]))
	tg2.Eventually("the endpoint change served", func() string {
		if r := tg2.Get("web.test", "/"); r.Name != "web-2" {
			return fmt.Sprintf("%d %.100q", r.Status, r.Body)
		}
		return ""
	})
	harness.WaitFor(t, 30*time.Second, "load after the restart", atLeast(sent()+300))
	n, failed := stop()
	stopped = true
	if w := tg2.Workers(); fmt.Sprint(w) != fmt.Sprint(workers) {
		t.Errorf("nginx workers %v after the endpoint change, want %v (no reload)", w, workers)
	}
	if r := tg2.Reloads(); r != 0 {
		t.Errorf("%d reloads", r)
	}
	if failed != 0 {
		t.Errorf("%d of %d requests failed", failed, n)
	}
	t.Logf("%d requests at ~300/s, %d failed; nginx served %s alone; the restarted tidegate was healthy (adopted) %s after it started",
		n, failed, alone.Round(time.Millisecond), adopt.Round(time.Millisecond))
	t.Logf("%s", grepLines(tg2.LogText(), "adopt"))

	// A second tidegate on the same working directory would adopt the
	// nginx the first one drives: it refuses to start.
	ports := harness.FreePorts(t, 3)
	out, err := exec.Command(harness.Bin, "local", "--manifests", tg.Dir, "--workdir", tg.WorkDir,
		"--http-port", strconv.Itoa(ports[0]), "--https-port", strconv.Itoa(ports[1]), "--status-port", strconv.Itoa(ports[2])).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another tidegate runs on the working directory") {
		t.Errorf("a second tidegate on the same working directory: %v\n%s", err, out)
	}
	if m := tg2.masterPID(); m != master || tg2.Get("web.test", "/").Status != 200 {
		t.Errorf("nginx after the second tidegate was refused: master %d (want %d)", m, master)
	}
}

// childOf returns the pid of the first child of parent (0 if none).
func childOf(parent int) int {
	matches, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if i > 0 && len(f) > 1 && f[1] == strconv.Itoa(parent) && f[0] != "Z" && strings.Contains(s[:i], "tidegate") {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(m)))
			return pid
		}
	}
	return 0
}

// TestSupervisedControllerKilled is the DaemonSet's design on one machine:
// `tidegate supervise -- local ...` is the container's main process; its
// controller is killed under load, the supervisor starts it again, and
// the new controller adopts the nginx that kept serving. SIGINT to the
// supervisor then stops everything, nginx included.
func TestSupervisedControllerKilled(t *testing.T) {
	be := harness.StartBackends(t, "web-1", "web-2")
	tg := &tidegate{harness.New(t, t.TempDir(), t.TempDir())}
	tg.Write("svc.yaml", harness.ServiceYAML("web", 80)+"---\n"+harness.SliceYAML("web-1", "web", be.Port, be.Addrs[:1]))
	tg.Write("ing.yaml", harness.IngressYAML("web", "web.test", "Prefix / web:80"))
	tg.Run(nil, nil, "", func() []string {
		return []string{"supervise", "--", "local", "--manifests", tg.Dir, "--workdir", tg.WorkDir,
			"--http-port", strconv.Itoa(tg.HTTPPort), "--https-port", strconv.Itoa(tg.HTTPSPort),
			"--status-port", strconv.Itoa(tg.StatusPt), "--log-level", "debug", "--stop-timeout", "5s"}
	})
	master := tg.masterPID()
	controller := childOf(tg.Cmd.Process.Pid)
	if controller == 0 {
		t.Fatal("no controller under the supervisor")
	}
	sent, stop := tg.load("web.test", 300, 60*300)
	harness.WaitFor(t, 30*time.Second, "load before the kill", func() string {
		if s := sent(); s < 300 {
			return fmt.Sprintf("%d sent", s)
		}
		return ""
	})
	if err := syscall.Kill(controller, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	harness.WaitFor(t, 30*time.Second, "a new controller that adopted nginx", func() string {
		if c := childOf(tg.Cmd.Process.Pid); c == controller || c == 0 {
			return fmt.Sprintf("controller %d", c)
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", tg.StatusPt))
		if err != nil {
			return err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return resp.Status
		}
		if n := tg.Metric("tidegate_nginx_adoptions_total"); n != 1 {
			return fmt.Sprintf("adoptions %v", n)
		}
		return ""
	})
	adopted := time.Since(killed)
	if m := tg.masterPID(); m != master {
		t.Errorf("nginx master %d, want the same %d", m, master)
	}
	tg.Write("svc.yaml", harness.ServiceYAML("web", 80)+"---\n"+harness.SliceYAML("web-1", "web", be.Port, be.Addrs[1:]))
	tg.Eventually("the endpoint change served", func() string {
		if r := tg.Get("web.test", "/"); r.Name != "web-2" {
			return fmt.Sprintf("%d %.100q", r.Status, r.Body)
		}
		return ""
	})
	n, failed := stop()
	if failed != 0 {
		t.Errorf("%d of %d requests failed", failed, n)
	}
	if r := tg.Reloads(); r != 0 {
		t.Errorf("%d reloads", r)
	}
	t.Logf("%d requests at ~300/s, %d failed; the supervisor's new controller adopted nginx %s after the kill",
		n, failed, adopted.Round(time.Millisecond))
	tg.Stop() // SIGINT, and waits for the supervisor to exit
	if tg.ExitErr() != nil {
		t.Errorf("the supervisor after SIGINT: %v", tg.ExitErr())
	}
	if syscall.Kill(master, 0) == nil {
		t.Errorf("nginx %d still runs after the supervisor stopped", master)
	}
}

// TestNginxReplacedWhenItRefusesEveryPush: nginx refuses every push (here
// the control token file was deleted, as a temp cleaner does, and nginx
// reloaded from outside, as logrotate does: nginx holds no token and
// refuses every control request). After several failures in a row tidegate
// starts nginx anew from its own state (configuration, Lua modules, the
// token, the backends), and the endpoint change that could not be pushed
// goes live. The push was retried forever before, and the old endpoints
// served for good. (The audit's own case, a stored version no push could
// go above, is now refused by nginx.)
func TestNginxReplacedWhenItRefusesEveryPush(t *testing.T) {
	be := harness.StartBackends(t, "web-1", "web-2")
	tg := startTidegate(t, map[string]string{
		"svc.yaml": harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs[:1]),
		"ing.yaml": harness.IngressYAML("web", "web.test", "Prefix / web:80"),
	})
	if r := tg.Get("web.test", "/"); r.Name != "web-1" {
		t.Fatalf("before: %d %q", r.Status, r.Body)
	}
	tokenFile := filepath.Join(tg.WorkDir, "run", "control.token")
	token := harness.ReadFile(t, tokenFile)
	if err := os.Remove(tokenFile); err != nil {
		t.Fatal(err)
	}
	master, workers := tg.masterPID(), tg.Workers()
	if err := syscall.Kill(master, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// Until the old workers are gone, a kept-alive control connection may
	// still reach one that holds the token.
	waitWorkersGone(t, tg, workers, "nginx reloaded from outside")
	tg.Write("svc.yaml", harness.ServiceYAML("web", 80)+"---\n"+harness.SliceYAML("web-1", "web", be.Port, be.Addrs[1:]))
	harness.WaitFor(t, 90*time.Second, "the endpoint change served", func() string {
		if r := tg.Get("web.test", "/"); r.Status != 200 || r.Name != "web-2" {
			return fmt.Sprintf("%d %.100q", r.Status, r.Body)
		}
		return ""
	})
	if m := tg.masterPID(); m == master {
		t.Errorf("nginx master still %d: not replaced", m)
	}
	if n := tg.Metric("tidegate_nginx_replacements_total"); n != 1 {
		t.Errorf("tidegate_nginx_replacements_total = %v, want 1", n)
	}
	if got, err := os.ReadFile(tokenFile); err != nil || string(got) != token {
		t.Errorf("the control token file after the replacement: %q, %v", got, err)
	}
	harness.WaitFor(t, 30*time.Second, "/healthz 200", func() string {
		if code, health := tg.getStatus("/healthz"); code != 200 {
			return fmt.Sprintf("%d %q", code, health)
		}
		return ""
	})
	log := tg.LogText()
	if !strings.Contains(log, "nginx refused every push several times in a row") {
		t.Errorf("no replacement logged:\n%s", grepLines(log, "push"))
	}
	t.Logf("pushes refused before the replacement: %d", strings.Count(log, "no control token"))
}

// TestAdoptedNginxReloadedWhenConfigurationChanged: an Ingress written
// while tidegate was dead makes the tidegate that adopts nginx reload it
// (the same master) once; without a change it does not (see
// TestControllerKilledUnderLoad).
func TestAdoptedNginxReloadedWhenConfigurationChanged(t *testing.T) {
	be := harness.StartBackends(t, "web-1")
	tg := startTidegate(t, map[string]string{
		"svc.yaml": harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		"ing.yaml": harness.IngressYAML("web", "web.test", "Prefix / web:80"),
	})
	master := tg.masterPID()
	if err := tg.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if exited, _ := tg.Wait(20 * time.Second); !exited {
		t.Fatal("tidegate did not die")
	}
	tg.Write("new.yaml", harness.IngressYAML("new", "new.test", "Prefix / web:80"))
	if r := tg.Get("new.test", "/"); r.Status != 404 {
		t.Fatalf("new.test served with no controller: %d", r.Status)
	}
	tg2 := startTidegateWith(t, nil, harness.Options{Dir: tg.Dir, WorkDir: tg.WorkDir, Ports: tg.Tidegate})
	if r := tg2.Get("new.test", "/"); r.Status != 200 || r.Name != "web-1" {
		t.Errorf("new.test after the adoption: %d %q", r.Status, r.Body)
	}
	if r := tg2.Get("web.test", "/"); r.Status != 200 {
		t.Errorf("web.test after the adoption: %d %q", r.Status, r.Body)
	}
	if m := tg2.masterPID(); m != master {
		t.Errorf("nginx master %d, want the same %d", m, master)
	}
	if n := tg2.SettledReloads(); n != 1 {
		t.Errorf("%d reloads, want 1", n)
	}
	if !strings.Contains(tg2.LogText(), "reloaded=true") {
		t.Errorf("the adoption did not log its reload:\n%s", grepLines(tg2.LogText(), "adopt"))
	}
}

// TestControlSocketDeleted: the control socket's file is deleted (a temp
// cleaner does that to old files): nginx serves on, but nobody can connect
// to it. A push no longer waits for it for good, holding every later
// change: it fails after a few seconds, and the failures replace nginx,
// which makes the socket anew; the endpoint change goes live.
func TestControlSocketDeleted(t *testing.T) {
	be := harness.StartBackends(t, "web-1", "web-2")
	tg := startTidegate(t, map[string]string{
		"svc.yaml": harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs[:1]),
		"ing.yaml": harness.IngressYAML("web", "web.test", "Prefix / web:80"),
	})
	master, workers := tg.masterPID(), tg.Workers()
	if err := os.Remove(filepath.Join(tg.WorkDir, "run", "tidegate.sock")); err != nil {
		t.Fatal(err)
	}
	// A reload from outside (logrotate) ends the workers that hold
	// tidegate's kept-alive control connections; the new ones keep the
	// listening socket, whose file stays gone.
	if err := syscall.Kill(master, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitWorkersGone(t, tg, workers, "nginx reloaded from outside")
	begin := time.Now()
	tg.Write("svc.yaml", harness.ServiceYAML("web", 80)+"---\n"+harness.SliceYAML("web-1", "web", be.Port, be.Addrs[1:]))
	harness.WaitFor(t, 90*time.Second, "the endpoint change served", func() string {
		if r := tg.Get("web.test", "/"); r.Status != 200 || r.Name != "web-2" {
			return fmt.Sprintf("%d %.100q", r.Status, r.Body)
		}
		return ""
	})
	if m := tg.masterPID(); m == master {
		t.Errorf("nginx master still %d: not replaced", m)
	}
	if n := tg.Metric("tidegate_nginx_replacements_total"); n != 1 {
		t.Errorf("tidegate_nginx_replacements_total = %v, want 1", n)
	}
	t.Logf("the endpoint change was served %s after the socket was deleted", time.Since(begin).Round(time.Millisecond))
}

// TestAdoptedNginxReloadedWhenLuaChanged: the Lua modules the adopted
// nginx loaded differ from tidegate's (here edited in the working
// directory; after an upgrade, another version's): the adopting tidegate
// writes its own and reloads the same master, which loads them anew.
func TestAdoptedNginxReloadedWhenLuaChanged(t *testing.T) {
	be := harness.StartBackends(t, "web-1")
	tg := startTidegate(t, map[string]string{
		"svc.yaml": harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		"ing.yaml": harness.IngressYAML("web", "web.test", "Prefix / web:80"),
	})
	master := tg.masterPID()
	if err := tg.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if exited, _ := tg.Wait(20 * time.Second); !exited {
		t.Fatal("tidegate did not die")
	}
	module := filepath.Join(tg.WorkDir, "lua", "tidegate", "configuration.lua")
	ours := harness.ReadFile(t, module)
	if err := os.WriteFile(module, []byte(ours+"\n-- another version\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tg2 := startTidegateWith(t, nil, harness.Options{Dir: tg.Dir, WorkDir: tg.WorkDir, Ports: tg.Tidegate})
	if m := tg2.masterPID(); m != master {
		t.Errorf("nginx master %d, want the same %d", m, master)
	}
	if got := harness.ReadFile(t, module); got != ours {
		t.Error("the adopting tidegate did not write its Lua modules back")
	}
	if n := tg2.SettledReloads(); n != 1 {
		t.Errorf("%d reloads, want 1", n)
	}
	if r := tg2.Get("web.test", "/"); r.Status != 200 {
		t.Errorf("web.test after the adoption: %d %q", r.Status, r.Body)
	}
}

// waitWorkersGone waits until none of workers (nginx worker pids) runs any
// more: after a reload, a kept-alive connection may still reach an old one.
func waitWorkersGone(t *testing.T, tg *tidegate, workers []int, what string) {
	t.Helper()
	harness.WaitFor(t, 30*time.Second, what, func() string {
		for _, w := range tg.Workers() {
			if slices.Contains(workers, w) {
				return fmt.Sprintf("old worker %d still runs", w)
			}
		}
		return ""
	})
}
