package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tidegate/tidegate/test/harness"
)

// Processes the benchmark starts: the backend nginx, the static reference
// nginx, tidegate local, wrk. Every process is started by this program and
// stopped by its own pid.

// freePort returns a TCP port that was free a moment ago on 127.0.0.1.
func freePort() int {
	p, err := harness.Ports(1)
	if err != nil {
		panic(err)
	}
	return p[0]
}

// pinned prefixes argv with taskset when cpus is set and the machine has
// more than one CPU.
func pinned(cpus string, argv ...string) *exec.Cmd {
	if cpus != "" && haveTaskset {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	return exec.Command(argv[0], argv[1:]...)
}

var haveTaskset = func() bool { _, err := exec.LookPath("taskset"); return err == nil }()

// proc is a child process in its own session and process group.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func startProc(name string, cmd *exec.Cmd, logPath string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	// A session of its own: the kernel schedules each session as a group
	// (autogroup), so a proxy competes for its core as itself, not diluted
	// by this program's and wrk's load on the other CPU (sidebyside.go).
	// The session leader leads its process group too (stop).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

// stop sends sig to the process and waits; after timeout it kills the
// process group it leads (only ours: Setpgid above).
func (p *proc) stop(sig syscall.Signal, timeout time.Duration) {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// nginxProc runs a plain nginx (backend or static reference) from a
// generated conf under dir.
func startNginx(name, dir, conf, cpus string) (*proc, error) {
	for _, d := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if out, err := exec.Command("nginx", "-t", "-q", "-p", dir, "-c", path, "-e", filepath.Join(dir, "logs", "error.log")).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: nginx -t: %s", name, out)
	}
	cmd := pinned(cpus, "nginx", "-p", dir, "-c", path, "-e", filepath.Join(dir, "logs", "error.log"), "-g", "daemon off; master_process on;")
	return startProc(name, cmd, filepath.Join(dir, "stdout.log"))
}

// tidegate is one `tidegate local` process.
type tidegate struct {
	*proc
	Dir, Work            string
	HTTP, HTTPS, Status  int
	startedAt, healthyAt time.Time
	client               *http.Client
	// PeakRSS is the largest VmRSS of the tidegate process seen while it
	// started (sampled every 100 ms).
	PeakRSS int64
}

// startTidegate runs `tidegate local` on the manifests in dir, its working
// files under root, with extra command-line arguments args.
func startTidegate(bin, root, dir, cpus string, args ...string) (*tidegate, error) {
	ports, err := harness.Ports(3)
	if err != nil {
		return nil, err
	}
	tg := &tidegate{Dir: dir, Work: filepath.Join(root, "work"), HTTP: ports[0], HTTPS: ports[1], Status: ports[2],
		client: &http.Client{Timeout: 10 * time.Second}}
	cmd := pinned(cpus, bin, "local", "--manifests", dir, "--workdir", tg.Work,
		"--http-port", strconv.Itoa(tg.HTTP), "--https-port", strconv.Itoa(tg.HTTPS),
		"--status-port", strconv.Itoa(tg.Status), "--stop-timeout", "5s")
	cmd.Args = append(cmd.Args, args...)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	tg.startedAt = time.Now()
	p, err := startProc("tidegate", cmd, filepath.Join(root, "tidegate.log"))
	if err != nil {
		return nil, err
	}
	tg.proc = p
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, _ := procMem(p.cmd.Process.Pid); rss > tg.PeakRSS {
				tg.PeakRSS = rss
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()
	err = tg.waitHealthy(5 * time.Minute)
	close(stopSampling)
	<-sampled
	if err != nil {
		tg.stop(syscall.SIGINT, 10*time.Second)
		return tg, fmt.Errorf("%w: %s", err, lastLine(readTail(tg.log)))
	}
	tg.healthyAt = time.Now()
	return tg, nil
}

func readTail(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func (tg *tidegate) waitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if tg.exited() {
			return fmt.Errorf("tidegate exited; see %s", tg.log)
		}
		resp, err := tg.client.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", tg.Status))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("tidegate not healthy after %s; see %s", timeout, tg.log)
}

// Stop stops tidegate (it stops its nginx).
func (tg *tidegate) Stop() {
	if tg != nil {
		tg.stop(syscall.SIGINT, 20*time.Second)
	}
}

// Metrics returns the Prometheus text lines of /metrics as name{labels} -> value.
func (tg *tidegate) Metrics() (map[string]float64, error) {
	return harness.Metrics(tg.client, tg.Status)
}

// Metric reads one series (0 when absent).
func (tg *tidegate) Metric(series string) float64 {
	m, err := tg.Metrics()
	if err != nil {
		return -1
	}
	return m[series]
}

// RSS returns VmRSS and VmHWM of the tidegate process in bytes.
func (tg *tidegate) RSS() (rss, hwm int64) {
	return procMem(tg.cmd.Process.Pid)
}

func procMem(pid int) (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = n << 10
		case "VmHWM:":
			hwm = n << 10
		}
	}
	return rss, hwm
}

// NginxPIDs returns the master pid and its workers.
func (tg *tidegate) NginxPIDs() []int {
	pidFile := filepath.Join(tg.Work, "nginx.pid")
	master, err := harness.NginxMaster(pidFile)
	if err != nil {
		return nil
	}
	workers, _ := harness.NginxWorkers(pidFile)
	return append([]int{master}, workers...)
}

// get sends GET / with Host host to 127.0.0.1:port and returns status and body.
func get(c *fasthttp.HostClient, host string) (int, []byte, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + host + "/")
	if err := c.DoTimeout(req, resp, 5*time.Second); err != nil {
		return 0, nil, err
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), nil
}

func hostClient(port, conns int) *fasthttp.HostClient {
	return &fasthttp.HostClient{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxConns: conns,
		MaxIdleConnDuration: time.Minute, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
}

// waitServes polls host until it answers 200 with body prefix want.
func waitServes(port int, host, want string, timeout time.Duration) error {
	c := hostClient(port, 1)
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		st, body, err := get(c, host)
		if err == nil && st == 200 && bytes.HasPrefix(body, []byte(want)) {
			return nil
		}
		last = fmt.Sprintf("status %d err %v body %.40q", st, err, body)
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("%s on port %d: still %s after %s", host, port, last, timeout)
}

// wrkResult is what one wrk run printed.
type wrkResult struct {
	RPS      float64
	P50, P99 time.Duration // from --latency
	Non2xx   int
	Errors   int
	Raw      string
}

var (
	wrkRPS    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkPct    = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkNon2xx = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	wrkErrors = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// wrkArgs is the command line of one wrk run (also printed in the report).
func wrkArgs(cpus string, threads, conns int, dur time.Duration, port int, host string) []string {
	argv := []string{"wrk", "-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(conns),
		"-d" + strconv.Itoa(int(dur.Seconds())) + "s", "--latency", "-H", "Host: " + host,
		fmt.Sprintf("http://127.0.0.1:%d/", port)}
	if cpus != "" && haveTaskset {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	return argv
}

func runWrk(argv []string) (wrkResult, error) {
	return runWrkCmd(exec.Command(argv[0], argv[1:]...))
}

func runWrkCmd(cmd *exec.Cmd) (wrkResult, error) {
	out, err := cmd.CombinedOutput()
	r := wrkResult{Raw: string(out)}
	if err != nil {
		return r, fmt.Errorf("wrk: %v: %s", err, out)
	}
	m := wrkRPS.FindStringSubmatch(r.Raw)
	if m == nil {
		return r, errors.New("wrk: no Requests/sec in output: " + r.Raw)
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	for _, m := range wrkPct.FindAllStringSubmatch(r.Raw, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]
		d := time.Duration(v * float64(unit))
		if m[1] == "50" {
			r.P50 = d
		} else {
			r.P99 = d
		}
	}
	if m := wrkNon2xx.FindStringSubmatch(r.Raw); m != nil {
		r.Non2xx, _ = strconv.Atoi(m[1])
	}
	if m := wrkErrors.FindStringSubmatch(r.Raw); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			r.Errors += n
		}
	}
	return r, nil
}

// cpuSeconds is the user+system CPU time the processes used so far.
func cpuSeconds(pids ...int) float64 {
	var total float64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseFloat(f[11], 64)
		k, _ := strconv.ParseFloat(f[12], 64)
		total += (u + k) / 100 // USER_HZ is 100 on Linux
	}
	return total
}

// nginxWorkers returns the worker pids of the nginx whose pid file is
// given (none when it cannot tell).
func nginxWorkers(pidFile string) []int {
	pids, _ := harness.NginxWorkers(pidFile)
	return pids
}
