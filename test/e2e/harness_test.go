package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/echo"
	"github.com/tidegate/tidegate/pkg/nginx"
)

// tidegateBin is built once by TestMain from ./cmd/tidegate: the tests run
// the real command line, as users do.
var tidegateBin string

func TestMain(m *testing.M) {
	if _, err := exec.LookPath("nginx"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: nginx is not installed; run `make deps`")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "tidegate-e2e-bin-")
	if err != nil {
		panic(err)
	}
	tidegateBin = filepath.Join(dir, "tidegate")
	out, err := exec.Command("go", "build", "-o", tidegateBin, "github.com/tidegate/tidegate/cmd/tidegate").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: build tidegate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a TCP port that was free a moment ago on 127.0.0.1.
func freePort(t testing.TB) int {
	t.Helper()
	return freePorts(t, 1)[0]
}

// freePorts returns n distinct TCP ports that were free a moment ago on
// 127.0.0.1. Their listeners are held open together: one at a time, the
// kernel can hand out the same port twice (CI saw http and status ports
// equal, and nginx could not bind).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// backends are echo servers on distinct loopback addresses sharing one
// port, as endpoints of one EndpointSlice port are.
type backends struct {
	Port  int
	Addrs []string // "127.0.0.x"
	stop  map[string]context.CancelFunc
	mu    sync.Mutex
}

var nextIP struct {
	sync.Mutex
	n int
}

// startBackends starts one echo server per name, each on its own loopback
// address and all on the same port; the server answers with its name.
func startBackends(t testing.TB, names ...string) *backends {
	t.Helper()
	for attempt := 0; attempt < 20; attempt++ {
		port := freePort(t)
		b := &backends{Port: port, stop: map[string]context.CancelFunc{}}
		ok := true
		for _, name := range names {
			nextIP.Lock()
			nextIP.n++
			ip := fmt.Sprintf("127.0.%d.%d", 10+nextIP.n/250, 1+nextIP.n%250)
			nextIP.Unlock()
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			ctx, cancel := context.WithCancel(context.Background())
			go echo.ServeListener(ctx, ln, name)
			b.Addrs = append(b.Addrs, ip)
			b.stop[ip] = cancel
		}
		if !ok {
			b.Close()
			continue
		}
		t.Cleanup(b.Close)
		return b
	}
	t.Fatal("could not find a port free on several loopback addresses")
	return nil
}

// Kill stops the backend at ip abruptly.
func (b *backends) Kill(ip string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.stop[ip]; c != nil {
		c()
		delete(b.stop, ip)
	}
}

func (b *backends) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ip, c := range b.stop {
		c()
		delete(b.stop, ip)
	}
}

// tidegate is one `tidegate local` process under test.
type tidegate struct {
	t                             testing.TB
	Dir, WorkDir                  string
	HTTPPort, HTTPSPort, StatusPt int
	cmd                           *exec.Cmd
	logPath                       string
	logf                          *os.File
	stopped                       bool
	exited                        chan struct{} // closed when cmd has exited
	exitErr                       error         // cmd.Wait's; read after exited is closed
	unhealthyOK                   bool          // start: any /healthz answer will do
	cpus                          string        // start: CPU affinity (taskset -c), "" for all
	noFile                        string        // start: open files limit (prlimit --nofile), "" to inherit
	client                        *http.Client
}

// startTidegate writes the manifests and runs `tidegate local` on them
// until /healthz answers 200.
func startTidegate(t testing.TB, manifests map[string]string) *tidegate {
	t.Helper()
	return startTidegateWith(t, manifests, startOptions{})
}

// startOptions change how startTidegateWith runs tidegate.
type startOptions struct {
	// Dir and WorkDir reuse directories (a restart); new ones when empty.
	Dir, WorkDir string
	// Args are extra command-line arguments.
	Args []string
	// Ports reuses the ports of an earlier run (a restart).
	Ports *tidegate
	// Cwd is the directory tidegate runs in (default: the test's).
	Cwd string
	// Unhealthy waits only for the status port to answer, not for /healthz
	// to answer 200.
	Unhealthy bool
	// CPUs runs tidegate (and so its nginx) on these CPUs only, as
	// `taskset -c` takes them.
	CPUs string
	// NoFile runs tidegate under this limit of open files, as
	// `prlimit --nofile` takes it ("1024:" lowers the soft limit only).
	NoFile string
}

func startTidegateWith(t testing.TB, manifests map[string]string, o startOptions) *tidegate {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.WorkDir == "" {
		o.WorkDir = t.TempDir()
	}
	tg := &tidegate{t: t, Dir: o.Dir, WorkDir: o.WorkDir}
	for name, body := range manifests {
		tg.Write(name, body)
	}
	tg.unhealthyOK, tg.cpus, tg.noFile = o.Unhealthy, o.CPUs, o.NoFile
	tg.run(o.Ports, nil, o.Cwd, func() []string {
		return append([]string{"local", "--manifests", tg.Dir, "--workdir", tg.WorkDir,
			"--http-port", strconv.Itoa(tg.HTTPPort), "--https-port", strconv.Itoa(tg.HTTPSPort),
			"--status-port", strconv.Itoa(tg.StatusPt), "--log-level", "debug", "--stop-timeout", "5s"}, o.Args...)
	})
	return tg
}

// run starts tidegateBin with args() in cwd ("": the test's) and waits until /healthz answers 200;
// t.Cleanup stops it. The ports are ports's (a restart) or new ones. New
// ports can be taken by another test between their choice and nginx's
// bind; then it tries again on other ports, up to three times.
func (tg *tidegate) run(ports *tidegate, env []string, cwd string, args func() []string) {
	t := tg.t
	t.Helper()
	tg.client = &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{MaxIdleConnsPerHost: 16}}
	workersCanEnter(t, tg.WorkDir)
	for attempt := 1; ; attempt++ {
		if ports != nil {
			tg.HTTPPort, tg.HTTPSPort, tg.StatusPt = ports.HTTPPort, ports.HTTPSPort, ports.StatusPt
		} else {
			p := freePorts(t, 3)
			tg.HTTPPort, tg.HTTPSPort, tg.StatusPt = p[0], p[1], p[2]
		}
		tg.logPath = filepath.Join(t.TempDir(), "tidegate.log")
		logf, err := os.Create(tg.logPath)
		if err != nil {
			t.Fatal(err)
		}
		tg.cmd = exec.Command(tidegateBin, args()...)
		if tg.cpus != "" { // taskset execs tidegate: the pid stays tidegate's
			tg.cmd = exec.Command("taskset", append([]string{"-c", tg.cpus}, tg.cmd.Args...)...)
		}
		if tg.noFile != "" { // prlimit execs the command too
			tg.cmd = exec.Command("prlimit", append([]string{"--nofile=" + tg.noFile, "--"}, tg.cmd.Args...)...)
		}
		tg.cmd.Dir = cwd
		if env != nil {
			tg.cmd.Env = append(os.Environ(), env...)
		}
		tg.cmd.Stdout, tg.cmd.Stderr = logf, logf
		tg.logf, tg.stopped = logf, false
		if err := tg.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		tg.exited = make(chan struct{})
		go func(cmd *exec.Cmd, exited chan struct{}) { tg.exitErr = cmd.Wait(); close(exited) }(tg.cmd, tg.exited)
		err = tg.healthy()
		if err == nil {
			t.Cleanup(tg.Stop)
			return
		}
		tg.Stop()
		if ports == nil && attempt < 3 && strings.Contains(tg.logText(), "Address already in use") {
			t.Logf("tidegate could not bind a port another test took (attempt %d); trying other ports", attempt)
			continue
		}
		tg.dumpLogs()
		t.Fatal(err)
	}
}

// workersCanEnter lets nginx's workers enter the temporary directories
// above dir, as an operator makes a --workdir reachable: run as root,
// tidegate runs them as nobody (nginx.LookupWorkerUser), and t.TempDir
// makes its directories 0700. Only o+x is added, never read.
func workersCanEnter(t testing.TB, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	tmp := filepath.Clean(os.TempDir())
	for d := filepath.Dir(dir); strings.HasPrefix(d, tmp+"/"); d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, st.Mode().Perm()|0o001); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Stop ends tidegate with SIGINT (and SIGKILL after 15s); safe to repeat.
func (tg *tidegate) Stop() {
	t := tg.t
	logf := tg.logf
	if tg.stopped {
		return
	}
	tg.stopped = true
	func() {
		_ = tg.cmd.Process.Signal(os.Interrupt)
		select {
		case <-tg.exited:
		case <-time.After(20 * time.Second):
			tg.cmd.Process.Kill()
			<-tg.exited
		}
		logf.Close()
		if t.Failed() {
			tg.dumpLogs()
		}
		tg.killNginx()
	}()
}

// killNginx kills the nginx left running on tg's working directory, if
// any: nginx outlives a tidegate that was killed (to be adopted by the
// next one), and must not outlive the test.
func (tg *tidegate) killNginx() {
	b, err := os.ReadFile(filepath.Join(tg.WorkDir, "nginx.pid"))
	if err != nil {
		return
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if pid <= 1 || err != nil || !strings.Contains(strings.ReplaceAll(string(cmdline), "\x00", " ")+" ", " -p "+tg.WorkDir+" ") {
		return
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL) // its session and group (Setsid)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

func (tg *tidegate) dumpLogs() {
	for _, p := range []string{tg.logPath, filepath.Join(tg.WorkDir, "logs", "error.log")} {
		b, _ := os.ReadFile(p)
		lines := strings.Split(string(b), "\n")
		if len(lines) > 80 {
			lines = lines[len(lines)-80:]
		}
		tg.t.Logf("---- %s (tail) ----\n%s", p, strings.Join(lines, "\n"))
	}
}

// wait waits up to timeout for tidegate to exit; exited is false if it is
// still running, err is its exit error.
func (tg *tidegate) wait(timeout time.Duration) (exited bool, err error) {
	select {
	case <-tg.exited:
		return true, tg.exitErr
	case <-time.After(timeout):
		return false, nil
	}
}

// healthy waits up to eventually for /healthz to answer 200, or for the
// process to exit.
func (tg *tidegate) healthy() error {
	deadline := time.Now().Add(eventually)
	for time.Now().Before(deadline) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", tg.StatusPt))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 || tg.unhealthyOK {
				return nil
			}
		}
		select {
		case <-tg.exited:
			return fmt.Errorf("tidegate exited before /healthz answered 200: %v", tg.cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("tidegate did not become healthy within %s", eventually)
}

// Write creates or replaces a manifest file atomically (write + rename), as
// editors and kubectl-style tools do.
func (tg *tidegate) Write(name, body string) {
	tg.t.Helper()
	tmp := filepath.Join(tg.Dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		tg.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(tg.Dir, name)); err != nil {
		tg.t.Fatal(err)
	}
}

// Remove deletes a manifest file.
func (tg *tidegate) Remove(name string) {
	tg.t.Helper()
	if err := os.Remove(filepath.Join(tg.Dir, name)); err != nil {
		tg.t.Fatal(err)
	}
}

// reply is what the echo backend answered, with the status code.
type reply struct {
	Status int
	echo.Reply
	Body     string
	Location string
}

// fresh sends GET http://host/path to tidegate's HTTP port on a new
// connection (a reload closes kept-alive ones, and nginx may close one
// while a refused header is still being written), with extra headers
// "Name: value"; the body is read. An error is returned, not fatal.
func (tg *tidegate) fresh(host, path string, headers ...string) (*http.Response, string, error) {
	req, err := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", tg.HTTPPort, path), nil)
	if err != nil {
		return nil, "", err
	}
	req.Host = host
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	return resp, readBody(resp), nil
}

// Get sends GET http://host/path to tidegate's HTTP port.
func (tg *tidegate) Get(host, path string) reply {
	return tg.do(tg.client, "http", tg.HTTPPort, host, path)
}

func (tg *tidegate) do(c *http.Client, scheme string, port int, host, path string) reply {
	tg.t.Helper()
	req, err := http.NewRequest("GET", fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, port, path), nil)
	if err != nil {
		tg.t.Fatal(err)
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return reply{Status: -1, Body: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, Body: string(b), Location: resp.Header.Get("Location")}
	_ = json.Unmarshal(b, &r.Reply)
	return r
}

// GetTLS sends GET https://host/path with SNI host and returns the reply
// and the serving certificate's common name and serial.
func (tg *tidegate) GetTLS(sni, path string) (reply, string, string) {
	tg.t.Helper()
	var cn, serial string
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: sni, InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				cn = cs.PeerCertificates[0].Subject.CommonName
				serial = cs.PeerCertificates[0].SerialNumber.String()
				return nil
			}},
		DisableKeepAlives: true,
	}}
	r := tg.do(c, "https", tg.HTTPSPort, sni, path)
	return r, cn, serial
}

// raw writes text as it is on a new connection to the HTTP port and
// returns everything nginx answers until it closes the connection (send
// "Connection: close").
func (tg *tidegate) raw(text string) string {
	tg.t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", tg.HTTPPort), 10*time.Second)
	if err != nil {
		tg.t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, text)
	b, _ := io.ReadAll(conn)
	return string(b)
}

// eventually bounds every wait on a condition: generous, because a loaded
// machine (CI, or tests running side by side) may take many times longer
// than an idle one, and a passing condition returns at once anyway. 15 s
// failed TestManyCertificates in a clean-clone run under load.
const eventually = 90 * time.Second

// Eventually retries f until it returns "" or the wait runs out, and fails
// with f's last message.
func (tg *tidegate) Eventually(what string, f func() string) {
	tg.t.Helper()
	deadline := time.Now().Add(eventually)
	var msg string
	for time.Now().Before(deadline) {
		if msg = f(); msg == "" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	tg.t.Fatalf("%s: still %s after %s", what, msg, eventually)
}

// Workers returns the sorted pids of nginx's worker processes.
func (tg *tidegate) Workers() []int {
	tg.t.Helper()
	b, err := os.ReadFile(filepath.Join(tg.WorkDir, "nginx.pid"))
	if err != nil {
		tg.t.Fatal(err)
	}
	master, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	pids, err := nginx.WorkerPIDs(master)
	if err != nil || len(pids) == 0 {
		tg.t.Fatalf("no nginx workers for master %d: %v", master, err)
	}
	sort.Ints(pids)
	return pids
}

// Reloads reads tidegate_reloads_total{result="success"} from /metrics.
// settledReloads waits until tidegate's reload count has stayed the same
// for 300 ms and returns it. nginx serves a new configuration a moment
// before the controller counts the reload (it polls nginx for the new
// generation), so a count read right after a new host answers may still
// grow; a test that then asserts "no reload" must start from this one.
func (tg *tidegate) settledReloads() int {
	tg.t.Helper()
	last, since := tg.Reloads(), time.Now()
	deadline := time.Now().Add(eventually)
	for time.Since(since) < 300*time.Millisecond {
		if time.Now().After(deadline) {
			tg.t.Fatalf("the reload count never settled (last %d)", last)
		}
		time.Sleep(20 * time.Millisecond)
		if n := tg.Reloads(); n != last {
			last, since = n, time.Now()
		}
	}
	return last
}

func (tg *tidegate) Reloads() int {
	tg.t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", tg.StatusPt))
	if err != nil {
		tg.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), `tidegate_reloads_total{result="success"} `); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// sliceYAML is an EndpointSlice for service svc with ready endpoints.
func sliceYAML(name, svc string, port int, ready []string, draining ...string) string {
	var eps strings.Builder
	for _, a := range ready {
		fmt.Fprintf(&eps, "  - addresses: [%q]\n    conditions: {ready: true}\n", a)
	}
	for _, a := range draining {
		fmt.Fprintf(&eps, "  - addresses: [%q]\n    conditions: {ready: false, serving: true, terminating: true}\n", a)
	}
	if eps.Len() == 0 {
		eps.WriteString("  []\n")
		return fmt.Sprintf(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %s
  labels: {kubernetes.io/service-name: %s}
addressType: IPv4
ports:
  - port: %d
endpoints: []
`, name, svc, port)
	}
	return fmt.Sprintf(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %s
  labels: {kubernetes.io/service-name: %s}
addressType: IPv4
ports:
  - port: %d
endpoints:
%s`, name, svc, port, eps.String())
}

// serviceYAML is a Service with one unnamed port.
func serviceYAML(name string, port int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %s
spec:
  ports:
  - port: %d
`, name, port)
}

// ingressYAML is an Ingress of class tidegate with one host and paths given
// as "Prefix /a svc:80".
func ingressYAML(name, host string, paths ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: %s
spec:
  ingressClassName: tidegate
  rules:
  - host: %q
    http:
      paths:
`, name, host)
	for _, p := range paths {
		f := strings.Fields(p)
		svc, port, _ := strings.Cut(f[2], ":")
		fmt.Fprintf(&b, `      - path: %q
        pathType: %s
        backend:
          service:
            name: %s
            port: {number: %s}
`, f[1], f[0], svc, port)
	}
	return b.String()
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hammer sends GET requests to host from n goroutines until the returned
// stop is called, which reports how many were sent and how many failed
// (any status but 200; the first few are logged).
func (tg *tidegate) hammer(host string, n int) (stop func() (sent, failed int64)) {
	var sentN, failedN atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				sentN.Add(1)
				if r := tg.Get(host, "/"); r.Status != 200 {
					if failedN.Add(1) <= 3 {
						tg.t.Logf("failed request to %s: %d %.200s", host, r.Status, r.Body)
					}
				}
			}
		}()
	}
	return func() (int64, int64) {
		close(done)
		wg.Wait()
		return sentN.Load(), failedN.Load()
	}
}
