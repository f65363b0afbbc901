package harness

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Tidegate is one tidegate process under test (`local`, `controller` or
// `supervise`). t.Cleanup stops it.
type Tidegate struct {
	// T is the test it belongs to.
	T testing.TB
	// Dir holds the manifests (`local`); WorkDir is its --workdir.
	Dir, WorkDir string
	// HTTPPort, HTTPSPort and StatusPt are the ports it listens on.
	HTTPPort, HTTPSPort, StatusPt int
	// Cmd is the running command; LogPath holds its stdout and stderr.
	Cmd     *exec.Cmd
	LogPath string
	// Client sends Get's requests: kept-alive connections, no redirects
	// followed.
	Client *http.Client

	logf        *os.File
	stopped     bool
	exited      chan struct{} // closed when Cmd has exited
	exitErr     error         // Cmd.Wait's; read after exited is closed
	unhealthyOK bool          // start: any /healthz answer will do
	cpus        string        // start: CPU affinity (taskset -c), "" for all
	noFile      string        // start: open files limit (prlimit --nofile), "" to inherit
}

// Options change how StartWith runs tidegate.
type Options struct {
	// Dir and WorkDir reuse directories (a restart); new ones when empty.
	Dir, WorkDir string
	// Args are extra command-line arguments.
	Args []string
	// Ports reuses the ports of an earlier run (a restart).
	Ports *Tidegate
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

// Start writes the manifests and runs `tidegate local` on them until
// /healthz answers 200.
func Start(t testing.TB, manifests map[string]string) *Tidegate {
	t.Helper()
	return StartWith(t, manifests, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, manifests map[string]string, o Options) *Tidegate {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.WorkDir == "" {
		o.WorkDir = t.TempDir()
	}
	tg := New(t, o.Dir, o.WorkDir)
	for name, body := range manifests {
		tg.Write(name, body)
	}
	tg.unhealthyOK, tg.cpus, tg.noFile = o.Unhealthy, o.CPUs, o.NoFile
	tg.Run(o.Ports, nil, o.Cwd, func() []string {
		return append([]string{"local", "--manifests", tg.Dir, "--workdir", tg.WorkDir,
			"--http-port", strconv.Itoa(tg.HTTPPort), "--https-port", strconv.Itoa(tg.HTTPSPort),
			"--status-port", strconv.Itoa(tg.StatusPt), "--log-level", "debug", "--stop-timeout", "5s"}, o.Args...)
	})
	return tg
}

// Controller describes one `tidegate controller` process to start.
type Controller struct {
	Kubeconfig string
	Args       []string // extra command-line arguments
	Env        []string // extra environment, "NAME=value"
}

// StartController runs `tidegate controller` with real nginx until its
// /healthz answers 200. It is stopped (SIGINT) at the end of t.
func StartController(t testing.TB, c Controller) *Tidegate {
	t.Helper()
	tg := New(t, "", t.TempDir())
	tg.Run(nil, c.Env, "", func() []string {
		return append([]string{"controller", "--kubeconfig", c.Kubeconfig, "--workdir", tg.WorkDir,
			"--http-port", strconv.Itoa(tg.HTTPPort), "--https-port", strconv.Itoa(tg.HTTPSPort),
			"--status-port", strconv.Itoa(tg.StatusPt), "--log-level", "debug", "--stop-timeout", "5s"}, c.Args...)
	})
	return tg
}

// New is a Tidegate not started yet, for a command line Start does not
// build (Run starts it).
func New(t testing.TB, dir, workDir string) *Tidegate {
	return &Tidegate{T: t, Dir: dir, WorkDir: workDir}
}

// Run starts Bin with args() in cwd ("": the test's) and waits until
// /healthz answers 200; t.Cleanup stops it. The ports are ports's (a
// restart) or new ones. New ports can be taken by another test between
// their choice and nginx's bind; then it tries again on other ports, up to
// three times.
func (tg *Tidegate) Run(ports *Tidegate, env []string, cwd string, args func() []string) {
	t := tg.T
	t.Helper()
	tg.Client = &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{MaxIdleConnsPerHost: 16}}
	workersCanEnter(t, tg.WorkDir)
	for attempt := 1; ; attempt++ {
		if ports != nil {
			tg.HTTPPort, tg.HTTPSPort, tg.StatusPt = ports.HTTPPort, ports.HTTPSPort, ports.StatusPt
		} else {
			p := FreePorts(t, 3)
			tg.HTTPPort, tg.HTTPSPort, tg.StatusPt = p[0], p[1], p[2]
		}
		tg.LogPath = filepath.Join(t.TempDir(), "tidegate.log")
		logf, err := os.Create(tg.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		tg.Cmd = exec.Command(Bin, args()...)
		if tg.cpus != "" { // taskset execs tidegate: the pid stays tidegate's
			tg.Cmd = exec.Command("taskset", append([]string{"-c", tg.cpus}, tg.Cmd.Args...)...)
		}
		if tg.noFile != "" { // prlimit execs the command too
			tg.Cmd = exec.Command("prlimit", append([]string{"--nofile=" + tg.noFile, "--"}, tg.Cmd.Args...)...)
		}
		tg.Cmd.Dir = cwd
		if env != nil {
			tg.Cmd.Env = append(os.Environ(), env...)
		}
		tg.Cmd.Stdout, tg.Cmd.Stderr = logf, logf
		tg.logf, tg.stopped = logf, false
		if err := tg.Cmd.Start(); err != nil {
			t.Fatal(err)
		}
		tg.exited = make(chan struct{})
		go func(cmd *exec.Cmd, exited chan struct{}) { tg.exitErr = cmd.Wait(); close(exited) }(tg.Cmd, tg.exited)
		err = tg.healthy()
		if err == nil {
			t.Cleanup(tg.Stop)
			return
		}
		tg.Stop()
		if ports == nil && attempt < 3 && strings.Contains(tg.LogText(), "Address already in use") {
			t.Logf("tidegate could not bind a port another test took (attempt %d); trying other ports", attempt)
			continue
		}
		tg.DumpLogs()
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

// Stop ends tidegate with SIGINT (and SIGKILL after 20s); safe to repeat.
func (tg *Tidegate) Stop() {
	t := tg.T
	logf := tg.logf
	if tg.stopped {
		return
	}
	tg.stopped = true
	_ = tg.Cmd.Process.Signal(os.Interrupt)
	select {
	case <-tg.exited:
	case <-time.After(20 * time.Second):
		tg.Cmd.Process.Kill()
		<-tg.exited
	}
	logf.Close()
	if t.Failed() {
		tg.DumpLogs()
	}
	tg.KillNginx()
}

// KillNginx kills the nginx left running on tg's working directory, if
// any: nginx outlives a tidegate that was killed (to be adopted by the
// next one), and must not outlive the test.
func (tg *Tidegate) KillNginx() {
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

// DumpLogs logs the tail of tidegate's log and of nginx's error.log.
func (tg *Tidegate) DumpLogs() {
	for _, p := range []string{tg.LogPath, filepath.Join(tg.WorkDir, "logs", "error.log")} {
		b, _ := os.ReadFile(p)
		lines := strings.Split(string(b), "\n")
		if len(lines) > 80 {
			lines = lines[len(lines)-80:]
		}
		tg.T.Logf("---- %s (tail) ----\n%s", p, strings.Join(lines, "\n"))
	}
}

// LogText returns tidegate's log so far.
func (tg *Tidegate) LogText() string { return ReadFile(tg.T, tg.LogPath) }

// Wait waits up to timeout for tidegate to exit; exited is false if it is
// still running, err is its exit error.
func (tg *Tidegate) Wait(timeout time.Duration) (exited bool, err error) {
	select {
	case <-tg.exited:
		return true, tg.exitErr
	case <-time.After(timeout):
		return false, nil
	}
}

// ExitErr is the process's exit error; read it after Wait or Stop.
func (tg *Tidegate) ExitErr() error { return tg.exitErr }

// healthy waits up to Patience for /healthz to answer 200, or for the
// process to exit.
func (tg *Tidegate) healthy() error {
	deadline := time.Now().Add(Patience)
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
			return fmt.Errorf("tidegate exited before /healthz answered 200: %v", tg.Cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("tidegate did not become healthy within %s", Patience)
}

// Write creates or replaces a manifest file atomically (write + rename), as
// editors and kubectl-style tools do.
func (tg *Tidegate) Write(name, body string) {
	tg.T.Helper()
	if err := WriteManifest(tg.Dir, name, body); err != nil {
		tg.T.Fatal(err)
	}
}

// Remove deletes a manifest file.
func (tg *Tidegate) Remove(name string) {
	tg.T.Helper()
	if err := os.Remove(filepath.Join(tg.Dir, name)); err != nil {
		tg.T.Fatal(err)
	}
}
