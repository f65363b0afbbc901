package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidegate/tidegate/pkg/dynamic"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/nginx"
	"github.com/tidegate/tidegate/pkg/nginxmetrics"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// Config configures a Controller.
type Config struct {
	Nginx   nginx.Settings
	Options model.Options
	// Debounce is how long the loop waits after an update for more to
	// arrive; MaxDelay bounds the wait under a steady stream. Zero means no
	// extra wait: sources debounce their own events, and updates that
	// arrive during a sync are coalesced into the next one anyway.
	Debounce time.Duration
	MaxDelay time.Duration
	Logger   *slog.Logger
	// Detach lets nginx outlive tidegate, and makes tidegate adopt the
	// nginx it finds running on the working directory (left by a
	// tidegate that died) instead of starting another: for a working
	// directory that is reused (nginx.Process.Detach).
	Detach bool
}

// Controller owns nginx and keeps it in line with the latest snapshot.
type Controller struct {
	cfg  Config
	log  *slog.Logger
	proc *nginx.Process
	// lock is held open for the life of the process: no other tidegate
	// runs on the working directory (lockWorkDir)
	lock *os.File
	push *dynamic.Client
	met  *metrics
	// requests counts nginx's request metrics log (nil: nginx writes no
	// metrics line); dataplane also reads its stub_status, for Prometheus.
	requests  *nginxmetrics.Log
	dataplane *nginxmetrics.Collector

	mu          sync.Mutex
	latest      *snapshot.Snapshot
	srcProblems []model.Problem
	wake        chan struct{}

	applied *model.Model // what nginx and Lua serve now
	// built is model.Build of builtSnap, the last snapshot synced: the
	// next snapshot's model is computed from it (model.Update), so an
	// endpoint change costs its backends, not a Build of everything.
	built     *model.Model
	builtSnap *snapshot.Snapshot
	// rejected is the last structure nginx -t refused; the same structure
	// is not checked again, only its dynamic part applied.
	rejected *model.Structure
	// needFull is set when a push failed: Lua's state is unknown, so a
	// sync at or after fullAt pushes everything. fullBackoff is the wait
	// after the last failure: 1 s, doubling to a minute while the full
	// push keeps failing.
	needFull    bool
	fullAt      time.Time
	fullBackoff time.Duration
	// reloadBackoff is the wait before a reload that failed (or a
	// candidate that could not be checked) is tried again: 1 s, doubling
	// to a minute. A failed reload leaves applied as it was, so the next
	// sync finds the same structural change to make.
	reloadBackoff time.Duration
	// down is set while nginx is not running and could not be started
	// again; restartBackoff is the wait before the next try: 1 s,
	// doubling to 30 s.
	down           bool
	restartBackoff time.Duration
	// pushStreak counts the pushes that failed in a row (a push nginx
	// applied without some items it refused does not fail). At
	// maxPushStreak nginx's state is taken as broken beyond what a push
	// can mend: /healthz fails and nginx is started anew (replace), once
	// per streak.
	pushStreak   int
	replaceNginx bool
	replaced     bool
	stopTimeout  time.Duration
	appliedConf  *nginx.Rendered
	lastProblem  map[string]bool
	healthy      atomic.Bool
	draining     atomic.Bool
	// resync asks the next sync to start over (Resync).
	resync atomic.Bool
	status atomic.Pointer[Status]
	page   pageState // what the status page shows (statuspage.go)
}

// Status is a summary for the status endpoints.
type Status struct {
	Generation string
	LastReload time.Time
	Reloads    int
	Problems   []model.Problem
}

// New prepares the working directory and returns an idle controller.
func New(cfg Config) (*Controller, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxDelay < cfg.Debounce {
		cfg.MaxDelay = 10 * cfg.Debounce
	}
	var lock *os.File
	if cfg.Detach {
		var err error
		if lock, err = lockWorkDir(cfg.Nginx); err != nil {
			return nil, err
		}
	}
	proc, err := nginx.NewProcess(cfg.Nginx, cfg.Logger)
	if err != nil {
		return nil, err
	}
	proc.Detach = cfg.Detach
	c := &Controller{cfg: cfg, log: cfg.Logger, proc: proc, lock: lock, push: dynamic.New(cfg.Nginx.SocketPath(), proc.Token()),
		met: newMetrics(), wake: make(chan struct{}, 1), lastProblem: map[string]bool{}}
	c.status.Store(&Status{})
	if !cfg.Nginx.NoRequestMetrics {
		c.requests = nginxmetrics.NewLog(cfg.Nginx.MetricsLogPath(), proc.ReopenLogs)
	}
	c.dataplane = nginxmetrics.NewCollector(cfg.Nginx.SocketPath(), proc.Token(), c.requests)
	c.met.reg.MustRegister(c.dataplane)
	return c, nil
}

// lockWorkDir makes sure no other tidegate runs on the working directory:
// it would adopt that one's nginx while it still drives it. The lock is
// held until the process ends, however it ends (flock), and nginx does not
// inherit it (the file is opened close-on-exec).
func lockWorkDir(set nginx.Settings) (*os.File, error) {
	dir := filepath.Join(set.WorkDir, "run")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock the working directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "tidegate.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the working directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another tidegate runs on the working directory %s", set.WorkDir)
		}
		return nil, fmt.Errorf("lock the working directory: %w", err)
	}
	return f, nil
}

// Update hands the controller a new snapshot (and the problems the source
// found reading it). Only the latest one is kept; it never blocks.
func (c *Controller) Update(snap *snapshot.Snapshot, problems []model.Problem) {
	c.mu.Lock()
	c.latest, c.srcProblems = snap, problems
	c.mu.Unlock()
	c.poke()
}

// Registry returns the Prometheus registry with the controller's metrics.
func (c *Controller) Registry() *prometheus.Registry { return c.met.reg }

// Healthy reports whether nginx runs with an applied configuration and the
// controller is not shutting down.
func (c *Controller) Healthy() bool { return c.healthy.Load() && !c.draining.Load() }

// Status returns the latest status summary.
func (c *Controller) Status() Status { return *c.status.Load() }

// WorkDir is nginx's working directory.
func (c *Controller) WorkDir() string { return c.cfg.Nginx.WorkDir }

// NginxPID is the nginx master pid (0 before start).
func (c *Controller) NginxPID() int { return c.proc.PID() }

// Resync makes the controller start over from the latest snapshot, as
// after SIGHUP: the model is built anew (not updated), a structure nginx
// refused before is checked again, the configuration is reloaded if it
// differs from the one nginx serves, and the whole dynamic state is pushed.
// It never blocks.
func (c *Controller) Resync() {
	c.resync.Store(true)
	c.poke()
}

// poke schedules a sync.
func (c *Controller) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Drain marks the controller unhealthy so load balancers stop sending new
// connections, before a graceful stop.
func (c *Controller) Drain() { c.draining.Store(true) }

// Run waits for the first snapshot, starts nginx, and then applies every
// update until ctx is done; it stops nginx gracefully (bounded by
// stopTimeout) on the way out.
func (c *Controller) Run(ctx context.Context, stopTimeout time.Duration) error {
	c.stopTimeout = stopTimeout
	c.log.Info("waiting for the first complete snapshot")
	select {
	case <-ctx.Done():
		return nil
	case <-c.wake:
	}
	defer func() {
		c.healthy.Store(false)
		if err := c.proc.Stop(stopTimeout); err != nil {
			c.log.Error("stop nginx", "err", err)
		}
	}()
	if err := c.start(ctx); err != nil {
		return err
	}
	c.page.model.Store(c.applied)
	// The metrics log is read at every scrape, and in between so that it
	// never grows far past its rotation size.
	metricsTick := time.NewTicker(5 * time.Second)
	defer metricsTick.Stop()
	// the endpoints the applied model balances to, rebuilt only when the
	// applied model changes
	var live func(ns, svc, addr string) bool
	var liveOf *model.Model
	var retry <-chan time.Time // while nginx is down: the next try to start it
	for {
		exited := c.proc.Done()
		if c.down {
			exited = nil // closed: nginx is already known to be gone
		}
		select {
		case <-ctx.Done():
			return nil
		case <-metricsTick.C:
			if c.requests == nil {
				continue // --enable-metrics=false
			}
			if err := c.requests.Read(); err != nil {
				c.log.Warn("read the metrics log", "path", c.cfg.Nginx.MetricsLogPath(), "err", err)
			}
			if m := c.page.model.Load(); live == nil || m != liveOf {
				live, liveOf = nginxmetrics.LiveEndpoints(m), m
			}
			c.requests.ForgetEndpoints(live)
		case <-exited:
			c.log.Error("nginx exited unexpectedly; restarting it with the last good configuration", "err", c.proc.Exited())
			c.met.nginxRestarts.Inc()
			c.healthy.Store(false)
			retry = c.restart(ctx)
		case <-retry:
			retry = c.restart(ctx)
		case <-c.wake:
			if c.cfg.Debounce > 0 {
				c.debounce(ctx)
			}
			c.sync(ctx)
			if c.replaceNginx && !c.down {
				retry = c.replace(ctx)
			}
			c.page.model.Store(c.applied)
		}
	}
}

// debounce waits until updates stop for cfg.Debounce, at most cfg.MaxDelay.
func (c *Controller) debounce(ctx context.Context) {
	deadline := time.NewTimer(c.cfg.MaxDelay)
	defer deadline.Stop()
	for {
		quiet := time.NewTimer(c.cfg.Debounce)
		select {
		case <-ctx.Done():
			quiet.Stop()
			return
		case <-deadline.C:
			quiet.Stop()
			return
		case <-quiet.C:
			return
		case <-c.wake:
			quiet.Stop()
		}
	}
}

func (c *Controller) take() (*snapshot.Snapshot, []model.Problem) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latest, c.srcProblems
}
