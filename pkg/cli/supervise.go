package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/tidegate/tidegate/pkg/nginx"
)

// supervise keeps the data plane up across controller crashes in a
// container. When a container's main process dies, the container is
// restarted and every process in it dies, nginx included; so the main
// process is this small supervisor, which never dies with the controller:
// it runs `tidegate controller` (or local) as its child and starts it
// again when it dies, while the nginx the controller started (detached,
// with --workdir) keeps serving, reparented to the supervisor, and is
// adopted by the next controller.
func newSupervise() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "supervise -- COMMAND [FLAGS]",
		Short: "Run a tidegate command (controller, local) and start it again whenever it dies, while its nginx keeps serving",
		Long: `supervise is a container's main process: it runs "tidegate COMMAND FLAGS" as
its child and starts it again when it dies (a crash, the OOM killer, SIGKILL),
after 1 s, doubling to 30 s while it keeps dying within a minute. The nginx the
command started on its --workdir outlives it and is adopted by the next one, so
a controller crash loses no request. SIGTERM and SIGINT are passed on and end
the supervisor once the command has stopped (nginx with it); SIGHUP is passed
on (a resync). If the command is not running when SIGTERM arrives, nginx is
asked to quit (SIGQUIT) and waited for.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return supervise(args, slog.Default())
		},
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// supervise runs tidegate with args until SIGTERM or SIGINT.
func supervise(args []string, log *slog.Logger) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("supervise: %w", err)
	}
	// Orphans (the nginx master of a controller that died) are reparented
	// to PID 1, which this is in a container; elsewhere, ask for them.
	if os.Getpid() != 1 {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			log.Warn("supervise: cannot become a subreaper; nginx will be reparented to init", "err", err)
		}
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGCHLD)

	var child *os.Process
	var started time.Time
	start := func() error {
		p, err := os.StartProcess(exe, append([]string{exe}, args...), &os.ProcAttr{Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
		if err != nil {
			return fmt.Errorf("supervise: start %s: %w", strings.Join(args, " "), err)
		}
		child, started = p, time.Now()
		log.Info("supervise: started", "pid", p.Pid, "command", args[0])
		return nil
	}
	if err := start(); err != nil {
		return err
	}
	var backoff time.Duration
	var again <-chan time.Time // when to start the command again
	stopping := false
	var quitDeadline <-chan time.Time
	for {
		select {
		case <-again:
			again = nil
			if err := start(); err != nil {
				return err
			}
		case <-quitDeadline:
			log.Warn("supervise: processes still running after the stop timeout; leaving them to the container's end")
			return nil
		case s := <-sigs:
			switch s {
			case syscall.SIGCHLD:
				code, exited := reap(child)
				if !exited {
					if stopping && child == nil && len(children()) == 0 {
						return nil
					}
					continue
				}
				child = nil
				if stopping {
					if len(children()) > 0 {
						quitChildren(log)
						continue
					}
					if code != 0 {
						return fmt.Errorf("tidegate %s exited with status %d", args[0], code)
					}
					return nil
				}
				if time.Since(started) > time.Minute {
					backoff = 0
				}
				backoff = min(max(2*backoff, time.Second), 30*time.Second)
				log.Error("supervise: tidegate exited; starting it again (nginx keeps serving)", "status", code, "retry_in", backoff)
				again = time.After(backoff)
			case syscall.SIGTERM, syscall.SIGINT:
				stopping = true
				if child != nil {
					_ = child.Signal(s)
					continue
				}
				again = nil
				if len(children()) == 0 {
					return nil
				}
				quitChildren(log)
				quitDeadline = time.After(60 * time.Second)
			case syscall.SIGHUP:
				if child != nil {
					_ = child.Signal(s)
				}
			}
		}
	}
}

// reap collects every child that exited and reports child's exit status
// if it was one of them (-1 for a signal).
func reap(child *os.Process) (code int, exited bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return code, exited
		}
		if child != nil && pid == child.Pid {
			exited, code = true, ws.ExitStatus()
		}
	}
}

// children lists the pids of this process's children (nginx masters that
// were reparented to it, the command).
func children() []int {
	pids, _ := nginx.WorkerPIDs(os.Getpid()) // the children of a pid, zombies left out
	return pids
}

// quitChildren asks every child (an nginx master left by a controller that
// is gone) to finish its requests and quit.
func quitChildren(log *slog.Logger) {
	for _, pid := range children() {
		log.Info("supervise: asking nginx to quit", "pid", pid)
		_ = syscall.Kill(pid, syscall.SIGQUIT)
	}
}
