package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	luafiles "github.com/tidegate/tidegate/lua"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/tlsutil"
)

// Binary is the nginx executable; tests and packagers may change it.
var Binary = "nginx"

// Process is one nginx master with its own prefix (the working
// directory): started by tidegate (Start), or adopted from a tidegate that
// died (Adopt). Its methods are not safe for concurrent use: the
// controller's sync loop is the only caller, which is what keeps reloads
// from overlapping.
type Process struct {
	set Settings
	log *slog.Logger

	token string // the control token (token.go)

	// Detach makes the nginx that Start starts outlive tidegate (a crash,
	// SIGKILL, the OOM killer): a tidegate started again on the same
	// working directory adopts it. Without it nginx gets SIGQUIT when
	// tidegate dies, which suits a working directory nobody will reuse.
	Detach bool
	// luaChanged is set when NewProcess found the Lua modules different
	// from tidegate's: a running master keeps the modules it loaded until
	// it reloads.
	luaChanged bool

	cmd     *exec.Cmd // the master tidegate started, nil for an adopted one
	pid     int       // the master's pid
	adopted bool
	exited  chan struct{}
	mu      sync.Mutex
	err     error
}

// NewProcess prepares the working directory (its modes: workdir.go): logs
// and temp directories, the Lua modules, and a self-signed default
// certificate for unknown SNI.
func NewProcess(set Settings, log *slog.Logger) (*Process, error) {
	if err := prepareWorkDir(set); err != nil { // workdir.go: who may open what
		return nil, err
	}
	token, made, err := ControlToken(set.TokenPath())
	if err != nil {
		return nil, fmt.Errorf("prepare working directory: %w", err)
	}
	if made {
		log.Info("made a new control token", "path", set.TokenPath())
	}
	luaChanged, err := writeLua(filepath.Join(set.WorkDir, "lua"))
	if err != nil {
		return nil, err
	}
	crt, key, err := tlsutil.SelfSigned("tidegate default certificate")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(set.WorkDir, "default.crt"), crt, 0o600); err != nil {
		return nil, fmt.Errorf("write default certificate: %w", err)
	}
	if err := os.WriteFile(filepath.Join(set.WorkDir, "default.key"), key, 0o600); err != nil {
		return nil, fmt.Errorf("write default certificate key: %w", err)
	}
	return &Process{set: set, log: log, token: token, luaChanged: luaChanged}, nil
}

// writeLua writes tidegate's Lua modules into dir and reports whether any
// file was missing or different.
func writeLua(dir string) (changed bool, err error) {
	err = fs.WalkDir(luafiles.FS, "tidegate", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, p)
		if d.IsDir() {
			if err := os.MkdirAll(dst, 0o700); err != nil {
				return err
			}
			return os.Chmod(dst, 0o700)
		}
		if !strings.HasSuffix(p, ".lua") {
			return nil
		}
		b, err := luafiles.FS.ReadFile(p)
		if err != nil {
			return err
		}
		if old, err := os.ReadFile(dst); err == nil && bytes.Equal(old, b) {
			return os.Chmod(dst, 0o600) // older versions wrote 0644
		}
		changed = true
		// Only the master reads them: init_by_lua requires every module.
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			return err
		}
		return os.Chmod(dst, 0o600)
	})
	return changed, err
}

// RefusedError is a candidate that `nginx -t` refused. Other errors of
// Check (the candidate could not be written, nginx could not be run) say
// nothing about the configuration.
type RefusedError struct {
	// Output is nginx's own message.
	Output string
}

func (e *RefusedError) Error() string { return "nginx -t rejected the candidate: " + e.Output }

// Check runs `nginx -t` on a candidate written to a private file, never on
// the live nginx.conf. A refusal is a *RefusedError carrying nginx's own
// message.
func (p *Process) Check(conf []byte) error {
	path := filepath.Join(p.set.WorkDir, "check", "nginx.conf")
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		return fmt.Errorf("write candidate: %w", err)
	}
	out, err := exec.Command(Binary, "-t", "-q", "-p", p.set.WorkDir, "-c", path,
		"-e", filepath.Join(p.set.WorkDir, "logs", "check.log")).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return &RefusedError{Output: strings.TrimSpace(string(out))}
	}
	if err != nil {
		return fmt.Errorf("run nginx -t: %w", err)
	}
	return nil
}

// authFileName is the form of every AuthFile name the model makes.
var authFileName = regexp.MustCompile(`^[0-9a-f]{16}\.(htpasswd|ca\.pem|crl\.pem|crt\.pem|key\.pem)$`)

// WriteAuthFiles writes the files a configuration refers to: htpasswd files
// (nginx's workers read them per request) and client certificate CAs and
// CRLs, backend CAs, certificates and keys (read by the master at reload;
// named by content, so a new CA is a new nginx.conf). Names come from the
// model, never from user text; any other name is refused. Only htpasswd
// files are readable by the workers' group (workdir.go), the rest by
// tidegate's user only.
func (p *Process) WriteAuthFiles(files []model.AuthFile) error {
	dir := filepath.Join(p.set.WorkDir, "auth")
	if err := os.MkdirAll(dir, 0o700); err != nil { // prepareWorkDir set its mode
		return fmt.Errorf("auth files: %w", err)
	}
	for _, f := range files {
		if !authFileName.MatchString(f.Name) {
			return fmt.Errorf("auth file name %q is not one tidegate makes", f.Name)
		}
		path := filepath.Join(dir, f.Name)
		mode, gid := authFileMode(p.set, f.Name)
		if old, err := os.ReadFile(path); err == nil && string(old) == f.Content {
			continue
		}
		tmp := path + ".new"
		if err := os.WriteFile(tmp, []byte(f.Content), mode); err != nil {
			return fmt.Errorf("auth file: %w", err)
		}
		if err := setMode(tmp, mode, gid); err != nil { // a .new left by a crash keeps its mode
			return fmt.Errorf("auth file: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("auth file: %w", err)
		}
	}
	return nil
}

// restoreToken writes tidegate's control token back to its file when the
// file no longer holds it (deleted, replaced): nginx reads the file at
// every start and reload, and would refuse every control request.
func (p *Process) restoreToken() error {
	if t, err := ReadToken(p.set.TokenPath()); err == nil && t == p.token {
		return nil
	}
	p.log.Warn("the control token file was missing or changed; writing tidegate's token back", "path", p.set.TokenPath())
	f, err := os.CreateTemp(filepath.Dir(p.set.TokenPath()), ".control.token-*") // 0600
	if err != nil {
		return fmt.Errorf("restore the control token: %w", err)
	}
	_, err = f.WriteString(p.token)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p.set.TokenPath())
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("restore the control token: %w", err)
	}
	return nil
}

// install makes a checked candidate the live nginx.conf (atomically).
func (p *Process) install(conf []byte) error {
	tmp := p.set.ConfPath() + ".new"
	if err := os.WriteFile(tmp, conf, 0o600); err != nil {
		return fmt.Errorf("write nginx.conf: %w", err)
	}
	if err := os.Rename(tmp, p.set.ConfPath()); err != nil {
		return fmt.Errorf("install nginx.conf: %w", err)
	}
	return nil
}

// Start installs conf and starts the nginx master in the foreground as a
// child process, then waits until it serves generation gen.
func (p *Process) Start(ctx context.Context, conf []byte, gen string) error {
	if err := p.install(conf); err != nil {
		return err
	}
	// The Lua modules and the control token are tidegate's too: a new
	// master loads them as tidegate has them, whatever happened to the
	// files meanwhile (a temp cleaner deletes a token file nginx reads only
	// when it starts or reloads).
	if _, err := writeLua(filepath.Join(p.set.WorkDir, "lua")); err != nil {
		return fmt.Errorf("write the Lua modules: %w", err)
	}
	if err := p.restoreToken(); err != nil {
		return err
	}
	for _, dir := range []string{"run", "unavailable"} {
		if err := clearSockets(filepath.Join(p.set.WorkDir, dir)); err != nil {
			return err
		}
	}
	cmd := exec.Command(Binary, "-p", p.set.WorkDir, "-c", p.set.ConfPath(),
		"-e", p.set.ErrorLogPath(), "-g", "daemon off; master_process on;")
	var stderr bytes.Buffer
	if p.Detach {
		// A session of its own and no parent-death signal: nginx outlives
		// tidegate. Its stderr is tidegate's own file, not a pipe that
		// would close with tidegate; an exit is explained by the error log.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		cmd.Stderr = os.Stderr
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGQUIT}
		// nginx's own stderr (and its error log with --error-log
		// /dev/stderr) goes on to tidegate's; the last 64 KiB explain an
		// exit.
		cmd.Stderr = io.MultiWriter(os.Stderr, &limitedBuffer{b: &stderr, max: 64 << 10})
		// Workers inherit the stderr pipe: without a delay, Wait would not
		// return while the workers of a killed master live on.
		cmd.WaitDelay = time.Second
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start nginx: %w (is nginx installed? run `make deps`)", err)
	}
	p.cmd, p.pid, p.adopted = cmd, cmd.Process.Pid, false
	p.exited = make(chan struct{})
	go func() {
		err := cmd.Wait()
		// Workers outlive a master that was killed (SIGKILL, the OOM
		// killer) and keep its ports: end its process group so that a new
		// master can bind them. After a clean exit the group is empty.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		why := strings.TrimSpace(stderr.String())
		if p.Detach {
			why = lastErrorLines(p.set.ErrorLogPath())
		}
		p.mu.Lock()
		p.err = fmt.Errorf("nginx exited: %v: %s", err, why)
		p.mu.Unlock()
		close(p.exited)
	}()
	p.log.Info("nginx started", "pid", cmd.Process.Pid, "conf", p.set.ConfPath())
	if err := p.waitGeneration(ctx, gen, p.waitFor(conf)); err != nil {
		// A master that never served is ended, so that the next Start does
		// not find its ports taken.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		return err
	}
	return nil
}

// clearSockets removes the unix sockets in dir, tidegate's private run
// directory: a master that did not exit cleanly leaves its sockets behind,
// and nginx refuses to bind over them.
func clearSockets(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("clear nginx sockets: %w", err)
	}
	for _, e := range entries {
		if e.Type()&fs.ModeSocket == 0 {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("clear nginx sockets: %w", err)
		}
	}
	return nil
}

// Reload installs conf, signals the master (SIGHUP) and waits until new
// workers serve generation gen. The caller has already checked conf.
func (p *Process) Reload(ctx context.Context, conf []byte, gen string) error {
	if p.pid == 0 {
		return errors.New("reload: nginx is not running")
	}
	if err := p.Exited(); err != nil {
		return err
	}
	if err := p.install(conf); err != nil {
		return err
	}
	if err := p.restoreToken(); err != nil { // the new workers read it
		return err
	}
	if err := syscall.Kill(p.pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("reload: signal nginx: %w", err)
	}
	return p.waitGeneration(ctx, gen, p.waitFor(conf))
}

// waitFor is how long nginx may take to serve a configuration: loading
// grows with its size (tens of seconds at 10,000 Ingresses on 2 cores), and
// with the certificates init_by_lua stores from a seed (a second per MiB,
// as for their push: 0.7 ms per certificate measured).
func (p *Process) waitFor(conf []byte) time.Duration {
	d := 30*time.Second + time.Duration(len(conf)/(64<<10))*time.Second
	if st, err := os.Stat(filepath.Join(p.set.SeedDir(), "certificates.json")); err == nil { // dynamic.SeedCertificates
		d += time.Duration(st.Size()>>20) * time.Second
	}
	return d
}

// Exited returns why nginx exited, or nil while it runs.
func (p *Process) Exited() error {
	if p.exited == nil {
		return errors.New("nginx was never started")
	}
	select {
	case <-p.exited:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.err
	default:
		return nil
	}
}

// Done is closed when nginx exits.
func (p *Process) Done() <-chan struct{} { return p.exited }

// Stop asks nginx to finish in-flight requests and quit (SIGQUIT), and kills
// it if it is still running after timeout.
func (p *Process) Stop(timeout time.Duration) error {
	if p.pid == 0 || p.Exited() != nil {
		return nil
	}
	_ = syscall.Kill(p.pid, syscall.SIGQUIT)
	select {
	case <-p.exited:
		p.log.Info("nginx stopped")
		return nil
	case <-time.After(timeout):
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		<-p.exited
		return fmt.Errorf("nginx did not quit within %s; killed", timeout)
	}
}

// ReopenLogs asks nginx to reopen its log files (SIGUSR1), after one was
// renamed for rotation.
func (p *Process) ReopenLogs() error {
	pid := p.PID()
	if pid == 0 {
		return fmt.Errorf("reopen nginx logs: nginx is not running")
	}
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return fmt.Errorf("reopen nginx logs: %w", err)
	}
	return nil
}

// PID is the master's process id (0 when not running).
func (p *Process) PID() int { return p.pid }

// WorkerPIDs lists the master's child processes (workers and cache helpers).
func WorkerPIDs(master int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the ")" of the command name: state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(master) && f[0] != "Z" {
			out = append(out, pid)
		}
	}
	return out, nil
}

// waitGeneration polls the control socket until nginx answers with gen: only
// then do workers with the new configuration accept requests.
func (p *Process) waitGeneration(ctx context.Context, gen string, timeout time.Duration) error {
	client := p.controlClient()
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	var last string
	for {
		if err := p.Exited(); err != nil {
			return err
		}
		resp, err := client.Get("http://tidegate/tidegate/generation")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(b)
			if last == gen {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nginx did not serve configuration %s within %s (it serves %q; see %s)",
				gen, timeout, last, p.set.ErrorLogPath())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		if delay < 10*time.Millisecond { // a reload is counted this soon after nginx serves it
			delay *= 2
		}
	}
}

// controlClient asks nginx over the control socket, with the token.
func (p *Process) controlClient() *http.Client {
	return &http.Client{Timeout: time.Second, Transport: WithToken(&http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", p.set.SocketPath())
		},
		DisableKeepAlives: true,
	}, p.token)}
}

// lastErrorLines returns the last emerg, alert and crit lines of the error
// log at path (a regular file), which say why nginx exited.
func lastErrorLines(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "see nginx's error log"
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return "see nginx's error log"
	} else if st.Size() > 64<<10 {
		_, _ = f.Seek(st.Size()-64<<10, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "[emerg]") || strings.Contains(l, "[alert]") || strings.Contains(l, "[crit]") {
			out = append(out, l)
		}
	}
	if len(out) > 3 {
		out = out[len(out)-3:]
	}
	if len(out) == 0 {
		return "see " + path
	}
	return strings.Join(out, "\n")
}

// limitedBuffer keeps the last max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(p) >= l.max {
		l.b.Reset()
		l.b.Write(p[len(p)-l.max:])
		return len(p), nil
	}
	if over := l.b.Len() + len(p) - l.max; over > 0 {
		l.b.Next(over)
	}
	l.b.Write(p)
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
