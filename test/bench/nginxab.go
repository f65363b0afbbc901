package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tidegate/tidegate/pkg/nginx"
)

// nginxAlone is one nginx (no tidegate) started on a rendered conf: how
// long the master takes to parse it and fork a worker, how long a SIGHUP
// reload takes until a new worker exists, and the memory of master and
// worker. It isolates what a conf costs nginx itself.
type nginxAlone struct {
	Variant       string
	Start, Reload time.Duration
	RSSMaster     int64
	RSSWorker     int64
}

// measureNginxAlone runs nginx on conf inside the (stopped) tidegate
// working directory work, pinned to cpus.
func measureNginxAlone(variant, work string, conf []byte, cpus string) (nginxAlone, error) {
	r := nginxAlone{Variant: variant}
	path := filepath.Join(work, "alone.conf")
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		return r, err
	}
	pidFile := filepath.Join(work, "nginx.pid")
	_ = os.Remove(pidFile)
	_ = os.Remove(nginx.Settings{WorkDir: work}.SocketPath())
	cmd := pinned(cpus, "nginx", "-p", work, "-c", path, "-e", filepath.Join(work, "logs", "alone.log"), "-g", "daemon off; master_process on;")
	t0 := time.Now()
	p, err := startProc("nginx-alone", cmd, filepath.Join(work, "logs", "alone.stdout"))
	if err != nil {
		return r, err
	}
	defer p.stop(syscall.SIGQUIT, 30*time.Second)
	deadline := time.Now().Add(5 * time.Minute)
	var master int
	var old []int
	for {
		if p.exited() {
			b, _ := os.ReadFile(filepath.Join(work, "logs", "alone.log"))
			return r, fmt.Errorf("nginx exited: %s", lastLine(string(b)))
		}
		if b, err := os.ReadFile(pidFile); err == nil {
			master, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			if old = nginxWorkers(pidFile); len(old) > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			return r, errors.New("nginx did not start a worker")
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.Start = time.Since(t0)
	time.Sleep(500 * time.Millisecond)
	t0 = time.Now()
	if err := syscall.Kill(master, syscall.SIGHUP); err != nil {
		return r, err
	}
	for {
		cur := nginxWorkers(pidFile)
		if fresh(cur, old) {
			break
		}
		if time.Now().After(t0.Add(5 * time.Minute)) {
			return r, errors.New("no new worker after SIGHUP")
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.Reload = time.Since(t0)
	time.Sleep(500 * time.Millisecond)
	r.RSSMaster, _ = procMem(master)
	for _, w := range nginxWorkers(pidFile) {
		rss, _ := procMem(w)
		r.RSSWorker = max(r.RSSWorker, rss)
	}
	return r, nil
}

func fresh(cur, old []int) bool {
	seen := map[int]bool{}
	for _, o := range old {
		seen[o] = true
	}
	for _, c := range cur {
		if !seen[c] {
			return true
		}
	}
	return false
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// perfShare records the proxy worker with perf for d and returns the share
// of samples per shared object (nginx, libluajit, ngx_http_lua_module,
// kernel, ...). Empty when perf is not usable.
func perfShare(pid int, d time.Duration, dir string) map[string]float64 {
	if _, err := exec.LookPath("perf"); err != nil {
		return nil
	}
	data := filepath.Join(dir, fmt.Sprintf("perf-%d.data", pid))
	if err := exec.Command("perf", "record", "-q", "-o", data, "-p", strconv.Itoa(pid), "--", "sleep", strconv.FormatFloat(d.Seconds(), 'f', 1, 64)).Run(); err != nil {
		return nil
	}
	out, err := exec.Command("perf", "report", "-i", data, "--stdio", "--sort", "dso").Output()
	if err != nil {
		return nil
	}
	shares := map[string]float64{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 || !strings.HasSuffix(f[0], "%") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		name := f[1]
		switch {
		case strings.HasPrefix(name, "[JIT]"):
			name = "LuaJIT JIT code"
		case strings.Contains(name, "libluajit"):
			name = "libluajit"
		case strings.Contains(name, "ngx_http_lua_module"):
			name = "ngx_http_lua_module"
		}
		shares[name] += v
	}
	return shares
}

// luaShare sums the Lua parts of a perf share.
func luaShare(sh map[string]float64) float64 {
	return sh["libluajit"] + sh["ngx_http_lua_module"] + sh["LuaJIT JIT code"] + sh["ndk_http_module.so"]
}
