package nginx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The data plane outlives its controller: an nginx started with Detach
// keeps serving when tidegate dies, and a tidegate started again on the
// same working directory adopts it instead of starting another (which
// could not bind the ports anyway). Adopting costs no request: nginx
// never stops, and its Lua state (backends, certificates) is still there
// when the new controller pushes everything again.

// ErrNothingToAdopt is Adopt's answer when no master of this working
// directory runs.
var ErrNothingToAdopt = errors.New("no nginx runs on this working directory")

// PidPath is the master's pid file (nginx.tmpl's pid directive).
func (s Settings) PidPath() string { return filepath.Join(s.WorkDir, "nginx.pid") }

// Adopt takes over the nginx master that a previous tidegate started on
// this working directory and left running, and returns the generation it
// serves. The master is checked before anything is sent to it: alive, an
// nginx master of this prefix (/proc/PID/cmdline) running the nginx binary
// tidegate would start (/proc/PID/exe). A master of this working directory
// that cannot be adopted (another binary, no answer on the control socket
// within timeout) is stopped gracefully, so that Start can take its ports;
// a process that is not ours is left alone. When tidegate's Lua modules
// differ from the files the master loaded, gen is "" so that the caller
// reloads it (a reload loads the modules anew).
//
// An adopted master is not tidegate's child: its exit is seen through a
// pidfd (Done), and it is signalled by pid.
func (p *Process) Adopt(ctx context.Context, timeout time.Duration) (string, error) {
	b, err := os.ReadFile(p.set.PidPath())
	if errors.Is(err, os.ErrNotExist) {
		return "", ErrNothingToAdopt
	}
	if err != nil {
		return "", fmt.Errorf("adopt nginx: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return "", fmt.Errorf("%w (pid file holds %q)", ErrNothingToAdopt, b)
	}
	// The pidfd is taken first and the process checked after: if the pid
	// is reused meanwhile, the pidfd refers to the process that was
	// checked or to one that is already gone.
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return "", fmt.Errorf("%w (pid %d: %v)", ErrNothingToAdopt, pid, err)
	}
	if err := p.isMaster(pid); err != nil {
		unix.Close(fd)
		return "", fmt.Errorf("%w: pid %d: %v", ErrNothingToAdopt, pid, err)
	}
	p.cmd, p.pid, p.adopted = nil, pid, true
	p.exited = make(chan struct{})
	go p.watch(fd, pid)

	why := ""
	if exe, err := p.sameBinary(pid); err != nil || !exe {
		why = fmt.Sprintf("it runs another nginx binary than %s (%v)", Binary, err)
	}
	var gen string
	if why == "" {
		gen, err = p.generation(ctx, timeout)
		if err != nil {
			why = fmt.Sprintf("it does not answer on the control socket: %v", err)
		}
	}
	if why != "" {
		p.log.Warn("stopping the nginx a previous tidegate left running: it cannot be adopted", "pid", pid, "reason", why)
		if err := p.Stop(timeout); err != nil {
			p.log.Warn("stop nginx", "err", err)
		}
		p.exited = nil
		return "", fmt.Errorf("%w: the nginx left running (pid %d) was stopped: %s", ErrNothingToAdopt, pid, why)
	}
	if p.luaChanged {
		p.log.Info("tidegate's Lua modules differ from those the adopted nginx loaded: it is reloaded")
		return "", nil
	}
	return gen, nil
}

// Adopted reports whether the master was adopted rather than started.
func (p *Process) Adopted() bool { return p.adopted }

// isMaster checks that pid is a live nginx master whose prefix is this
// working directory. nginx rewrites its command line into
// "nginx: master process nginx -p PREFIX -c ...".
func (p *Process) isMaster(pid int) error {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return fmt.Errorf("not running: %w", err)
	}
	if i := strings.LastIndexByte(string(stat), ')'); i < 0 || strings.HasPrefix(strings.TrimSpace(string(stat[i+1:])), "Z") {
		return errors.New("exited (a zombie)")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return err
	}
	cmdline := strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
	if !strings.HasPrefix(cmdline, "nginx: master process ") {
		return fmt.Errorf("not an nginx master: %q", cmdline)
	}
	if !strings.Contains(cmdline+" ", " -p "+p.set.WorkDir+" ") {
		return fmt.Errorf("an nginx master of another prefix: %q", cmdline)
	}
	return nil
}

// sameBinary reports whether pid runs the executable Start would.
func (p *Process) sameBinary(pid int) (bool, error) {
	path, err := exec.LookPath(Binary)
	if err != nil {
		return false, err
	}
	want, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	got, err := os.Stat(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return false, err
	}
	return os.SameFile(want, got), nil
}

// watch closes p.exited when the adopted master exits (its pidfd becomes
// readable) and ends the workers it leaves behind.
func (p *Process) watch(fd, pid int) {
	defer unix.Close(fd)
	for {
		_, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, -1)
		if err == nil || !errors.Is(err, unix.EINTR) {
			break
		}
	}
	// Started by a tidegate with Detach: its own session, so its process
	// group is its pid.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	p.mu.Lock()
	p.err = fmt.Errorf("nginx (pid %d, adopted) exited: %s", pid, lastErrorLines(p.set.ErrorLogPath()))
	p.mu.Unlock()
	close(p.exited)
}

// generation asks nginx which configuration it serves, retrying for up to
// timeout.
func (p *Process) generation(ctx context.Context, timeout time.Duration) (string, error) {
	client := p.controlClient()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get("http://tidegate/tidegate/generation")
		if err == nil {
			b, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == 200 {
				return string(b), nil
			}
			err = fmt.Errorf("%s: %q", resp.Status, b)
		}
		if time.Now().After(deadline) {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-p.exited:
			return "", p.Exited()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
