package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
	"slices"
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

// start renders the first configuration and starts nginx with it. When the
// candidate fails the check, the Ingresses responsible are quarantined; if
// that does not help, the last good nginx.conf left in the working
// directory by a previous run is used; failing that, an empty configuration,
// so the status port and the default server still come up.
func (c *Controller) start(ctx context.Context) error {
	snap, srcProblems := c.take()
	m := model.Build(snap, c.cfg.Options)
	c.built, c.builtSnap = m, snap
	c.report(m, srcProblems)
	r, err := c.candidate(m)
	if err != nil {
		c.log.Error("first configuration rejected", "err", err)
		if q, ok := c.quarantine(snap, err); ok {
			c.report(q, srcProblems)
			if qr, qerr := c.candidate(q); qerr == nil {
				m, r, err = q, qr, nil
			}
		}
	}
	if err != nil {
		if last, lerr := c.lastGood(); lerr == nil {
			c.log.Warn("serving the last good nginx.conf of a previous run until the configuration is fixed", "generation", last.Generation)
			r, err = last, nil
			c.rejected = &m.Structure
		}
	}
	if err != nil {
		c.log.Error("starting with no Ingress served until the configuration is fixed")
		m = model.Build((&snapshot.Snapshot{}).Index(), c.cfg.Options)
		if r, err = c.candidate(m); err != nil {
			return fmt.Errorf("even an empty configuration fails the nginx check (is the nginx install complete? run `make deps`): %w", err)
		}
	}
	begin := time.Now()
	adopted, err := false, error(nil)
	if c.cfg.Detach {
		adopted, err = c.adopt(ctx, m, r)
	}
	if !adopted {
		c.writeSeed(m, false)
		if err := c.proc.Start(ctx, r.Conf, r.Generation); err != nil {
			return err
		}
		c.log.Info("nginx serves the first configuration", "generation", r.Generation, "servers", len(m.Structure.Servers), "took", time.Since(begin).Round(time.Millisecond),
			"worker_connections", r.WorkerConnections, "worker_rlimit_nofile", r.WorkerOpenFiles)
		err = c.pushAll(ctx, m)
		c.removeSeed()
	}
	c.appliedConf = r
	c.applied = m
	c.reloadResult(nil, 0)
	if err != nil {
		// nginx serves what it took; /healthz stays 503 until a full push
		// succeeds. Exiting would take down every host of the node.
		c.pushFailed()
		c.log.Error("the first push failed; nginx serves without what it refused", "retry_in", c.fullBackoff, "err", err)
		c.met.inSync.Set(0)
	} else {
		c.pushedAll()
		c.met.inSync.Set(1)
	}
	c.setStatus(false)
	releaseMemory()
	return nil
}

// adopt takes over the nginx a previous tidegate left running on the
// working directory, if there is one it can adopt (nginx.Process.Adopt),
// and brings it to r. Everything is pushed in full first: Lua's state is
// the dead controller's, and the new configuration, if any, must find its
// backends; versions go on above what Lua stores (dynamic.Client recovers
// from a conflict). nginx is reloaded only if it serves another
// configuration. adopted is false when there was nothing to adopt (or it
// could not take r): then Start starts an nginx of its own. err is a
// failed push (adopted is true then).
func (c *Controller) adopt(ctx context.Context, m *model.Model, r *nginx.Rendered) (adopted bool, err error) {
	begin := time.Now()
	gen, aerr := c.proc.Adopt(ctx, 10*time.Second)
	if aerr != nil {
		c.log.Info("starting nginx: none to adopt", "reason", aerr)
		return false, nil
	}
	pid := c.proc.PID()
	c.log.Info("adopting the nginx a previous tidegate left running", "pid", pid, "generation", gen)
	err = c.pushAll(ctx, m)
	pushed := time.Since(begin)
	reloaded := gen != r.Generation
	if reloaded {
		if rerr := c.proc.Reload(ctx, r.Conf, r.Generation); rerr != nil {
			c.log.Error("the adopted nginx did not take the current configuration; starting one anew", "pid", pid, "err", rerr)
			if serr := c.proc.Stop(c.stopTimeout); serr != nil {
				c.log.Error("stop nginx", "err", serr)
			}
			return false, nil
		}
		c.met.reloads.WithLabelValues("success").Inc()
		c.page.noteReload(time.Since(begin)-pushed, "adopted nginx served another configuration")
	}
	// A seed the dead controller left (it died between writing it and its
	// push) holds private keys and is no use now.
	c.removeSeed()
	c.met.adoptions.Inc()
	c.log.Info("adopted the running nginx", "pid", pid, "generation", r.Generation, "reloaded", reloaded,
		"push", pushed.Round(time.Millisecond), "took", time.Since(begin).Round(time.Millisecond))
	return true, err
}

// lastGood reads the nginx.conf a previous run installed (only checked
// configurations are ever installed) and checks it again.
func (c *Controller) lastGood() (*nginx.Rendered, error) {
	b, err := os.ReadFile(c.cfg.Nginx.ConfPath())
	if err != nil {
		return nil, err
	}
	if err := c.proc.Check(b); err != nil {
		return nil, err
	}
	gen := ""
	if i := bytes.Index(b, []byte("location = /tidegate/generation")); i >= 0 {
		rest := b[i:]
		if j := bytes.Index(rest, []byte("return 200 ")); j >= 0 {
			rest = rest[j+len("return 200 "):]
			if k := bytes.IndexByte(rest, ';'); k > 0 {
				gen = string(rest[:k])
			}
		}
	}
	if gen == "" {
		return nil, fmt.Errorf("no generation in %s", c.cfg.Nginx.ConfPath())
	}
	return &nginx.Rendered{Conf: b, Generation: gen}, nil
}

// restart brings nginx back with the last applied configuration and pushes
// the whole dynamic state again (Lua's memory died with nginx); a sync
// follows for what changed meanwhile. When nginx cannot start (a full
// disk, a port taken), tidegate does not exit: it would take the node's
// data plane with it for good (in a pod, a crash loop), while the cause
// may pass. It returns when to try again (nil once nginx runs): 1 s,
// doubling to 30 s; /healthz answers 503 meanwhile.
func (c *Controller) restart(ctx context.Context) <-chan time.Time {
	c.writeSeed(c.applied, false)
	if err := c.proc.Start(ctx, c.appliedConf.Conf, c.appliedConf.Generation); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		c.down = true
		c.restartBackoff = min(max(2*c.restartBackoff, time.Second), 30*time.Second)
		c.met.inSync.Set(0)
		c.page.noteNginxDown(err, c.restartBackoff)
		c.log.Error("could not start nginx again; it keeps the last good configuration and is tried again", "retry_in", c.restartBackoff, "err", err)
		return time.After(c.restartBackoff)
	}
	if c.down {
		c.log.Info("nginx runs again")
	}
	c.down, c.restartBackoff = false, 0
	c.page.noteNginxDown(nil, 0)
	c.poke() // what changed while nginx was down
	err := c.pushAll(ctx, c.applied)
	c.removeSeed()
	if err != nil {
		c.pushFailed()
		c.log.Error("the push after restarting nginx failed; nginx serves without what it refused", "retry_in", c.fullBackoff, "err", err)
		return nil
	}
	c.pushedAll()
	c.met.inSync.Set(1)
	return nil
}

// replace stops nginx (gracefully, within the stop timeout) and starts it
// anew from tidegate's state: the last good configuration, the Lua
// modules, and the backends (seed) and certificates pushed in full. It is
// the last resort when nginx refused every push maxPushStreak times in a
// row: whatever its shared dicts hold, a push cannot mend it (a stored
// version no push can go above was one such state), and serving stale
// endpoints for good is worse than the moment the restart costs.
func (c *Controller) replace(ctx context.Context) <-chan time.Time {
	c.replaceNginx, c.replaced = false, true
	c.met.nginxReplacements.Inc()
	c.log.Error("nginx refused every push several times in a row; starting it anew from tidegate's state", "failed_pushes", c.pushStreak)
	if err := c.proc.Stop(c.stopTimeout); err != nil {
		c.log.Error("stop nginx", "err", err)
	}
	return c.restart(ctx)
}

// maxPushStreak is how many pushes in a row may fail before nginx is
// replaced: a sync after a failure tries the full push, then its own, so
// with the full push's backoff this is about 3 s after the first failure
// (measured: 3.0 s with nginx refusing every control request).
const maxPushStreak = 4

// pushedAll records a full push that succeeded: Lua holds the whole state.
func (c *Controller) pushedAll() {
	c.needFull, c.fullBackoff = false, 0
	c.pushStreak, c.replaced = 0, false
	c.healthy.Store(true)
}

// writeSeed writes the dynamic state of m where nginx's init_by_lua stores
// it into empty shared dicts (dynamic.WriteSeed), so that new workers do
// not answer 503 until the push that follows lands. Certificates are
// seeded only for a reload (withCerts): the old workers serve while the
// master stores them. A starting nginx serves nothing until its
// init_by_lua is done, and certificates cost ~0.7 ms each there (3.4 s at
// 5,000), so a start seeds only the backends (milliseconds) and TLS hosts
// get the default certificate until their push lands. A failure costs only
// the window, so it is logged.
func (c *Controller) writeSeed(m *model.Model, withCerts bool) {
	var certs []model.Certificate
	if withCerts {
		certs = m.Dynamic.Certificates
		if certs == nil {
			certs = []model.Certificate{}
		}
	}
	if err := c.push.WriteSeed(c.seedDir(), m.Dynamic.Backends, certs); err != nil {
		c.log.Warn("could not write the seed for nginx's new shared dicts; they stay empty until the push", "err", err)
	}
}

// removeSeed deletes the seed once the push it stood in for is done: it
// holds private keys, and a later start writes a fresh one.
func (c *Controller) removeSeed() {
	if err := dynamic.RemoveSeed(c.seedDir()); err != nil {
		c.log.Warn("could not remove the seed", "dir", c.seedDir(), "err", err)
	}
}

func (c *Controller) seedDir() string { return c.cfg.Nginx.SeedDir() }

func (c *Controller) pushAll(ctx context.Context, m *model.Model) error {
	if err := c.pushBackends(ctx, true, m.Dynamic.Backends, nil); err != nil {
		return err
	}
	return c.pushCertificates(ctx, true, m.Dynamic.Certificates, nil)
}

// candidate renders and checks a model's nginx.conf.
func (c *Controller) candidate(m *model.Model) (*nginx.Rendered, error) {
	r, err := nginx.Render(m.Structure, c.cfg.Nginx)
	if err != nil {
		return nil, err
	}
	if err := c.proc.WriteAuthFiles(m.Structure.AuthFiles); err != nil {
		return nil, &notCheckedError{err}
	}
	if err := c.proc.Check(r.Conf); err != nil {
		var refused *nginx.RefusedError
		if !errors.As(err, &refused) {
			return nil, &notCheckedError{err}
		}
		return nil, err
	}
	return r, nil
}

// notCheckedError is a candidate that could not be written or checked: it
// says nothing about the configuration (a full disk, a missing binary).
type notCheckedError struct{ err error }

func (e *notCheckedError) Error() string { return e.err.Error() }
func (e *notCheckedError) Unwrap() error { return e.err }

// notConfigFault reports whether a candidate's failure is not the
// configuration's fault, so it must be tried again rather than set aside:
// the candidate could not be written or checked, or nginx -t now refuses
// the configuration it serves as well (it cannot write its files).
func (c *Controller) notConfigFault(err error) bool {
	var nc *notCheckedError
	if errors.As(err, &nc) {
		return true
	}
	return c.appliedConf != nil && c.proc.Check(c.appliedConf.Conf) != nil
}

// sync applies the latest snapshot: push what is dynamic, reload only for
// structure, and keep the last good configuration when a candidate fails.
func (c *Controller) sync(ctx context.Context) {
	defer holdGC()()
	if c.down {
		return // the restart applies the latest snapshot
	}
	snap, srcProblems := c.take()
	c.met.syncs.Inc()
	if c.resync.Swap(false) {
		c.log.Info("resync: building the model anew, checking the structure again and pushing everything")
		c.met.resyncs.Inc()
		c.built, c.builtSnap, c.rejected = nil, nil, nil
		c.needFull, c.fullAt = true, time.Time{}
	}
	next := model.Update(c.built, c.builtSnap, snap, c.cfg.Options)
	c.built, c.builtSnap = next, snap
	c.report(next, srcProblems)
	if c.needFull && !time.Now().Before(c.fullAt) {
		if err := c.pushAll(ctx, c.applied); err != nil {
			c.pushFailed()
			c.log.Error("full push failed", "retry_in", c.fullBackoff, "err", err)
		} else {
			c.pushedAll()
		}
	}
	plan := Decide(c.applied, next)
	if plan.Empty() {
		return
	}
	if !plan.Reload {
		if err := c.applyDynamic(ctx, plan); err != nil {
			c.met.inSync.Set(0)
			c.log.Error("push failed; the next sync pushes everything again", "err", err)
			c.pushFailed()
			return
		}
		c.applied = next
		c.met.inSync.Set(1)
		return
	}

	if c.rejected != nil && reflect.DeepEqual(*c.rejected, next.Structure) {
		c.applyKeepingStructure(ctx, next)
		return
	}
	begin := time.Now()
	r, err := c.candidate(next)
	if err != nil && c.notConfigFault(err) {
		c.reloadFailed(err)
		c.log.Error("could not check the new configuration (not its fault); nginx keeps serving the last good one, retrying",
			"retry_in", c.reloadBackoff, "err", err)
		c.applyKeepingStructure(ctx, next)
		return
	}
	if err != nil {
		// Find the Ingresses that nginx rejects, set them aside and apply
		// the rest; failing that, keep the last good configuration.
		if q, ok := c.quarantine(snap, err); ok {
			c.report(q, srcProblems)
			if qr, qerr := c.candidate(q); qerr == nil {
				next, r, err = q, qr, nil
				plan = Decide(c.applied, next)
			}
		}
	}
	if err != nil {
		c.rejected = &next.Structure
		c.met.reloads.WithLabelValues("check_failed").Inc()
		c.reloadResult(err, 0) // not retried: the same structure would fail again
		c.met.inSync.Set(0)
		c.log.Error("new configuration rejected; nginx keeps serving the last good one", "err", err)
		c.applyKeepingStructure(ctx, next)
		return
	}
	c.rejected = nil
	if !plan.Reload { // the quarantine left the live structure as it is
		if err := c.applyDynamic(ctx, plan); err != nil {
			c.pushFailed()
		}
		c.applied = next
		return
	}
	// New and changed backends first, so the new configuration finds them;
	// removals after the reload, when no worker routes to them any more.
	checked := time.Now()
	add := plan
	add.RemovedBackends, add.RemovedCertificates = nil, nil
	if err := c.applyDynamic(ctx, add); err != nil {
		c.log.Error("push before reload failed; retrying with a full push", "err", err)
		c.pushFailed()
	}
	pushed := time.Now()
	resized := c.applied.Structure.Global.Settings.LuaDicts != next.Structure.Global.Settings.LuaDicts
	if resized {
		c.writeSeed(next, true) // the new zones start with it
	}
	if err := c.proc.Reload(ctx, r.Conf, r.Generation); err != nil {
		c.reloadFailed(err)
		c.met.inSync.Set(0)
		c.log.Error("reload failed; nginx keeps serving the last good configuration, retrying", "retry_in", c.reloadBackoff, "err", err)
		return
	}
	took := time.Since(begin)
	c.appliedConf = r
	c.met.reloads.WithLabelValues("success").Inc()
	c.met.reloadSeconds.Set(took.Seconds())
	c.page.noteReload(took, reloadReason(c.applied, next))
	c.reloadBackoff = 0
	c.reloadResult(nil, 0)
	if resized {
		// A shared dict of a new size is a new zone: the seed filled it,
		// and everything is pushed again.
		c.log.Info("shared dicts resized: pushing everything again", "mib", next.Structure.Global.Settings.LuaDicts)
		err := c.pushAll(ctx, next)
		c.removeSeed()
		if err != nil {
			c.log.Error("full push after resizing the shared dicts failed; retrying", "err", err)
			c.pushFailed()
		}
	} else {
		rem := Plan{RemovedBackends: plan.RemovedBackends, RemovedCertificates: plan.RemovedCertificates}
		if err := c.applyDynamic(ctx, rem); err != nil {
			c.log.Error("push after reload failed; retrying with a full push", "err", err)
			c.pushFailed()
		}
	}
	c.applied = next
	c.met.inSync.Set(1)
	c.setStatus(true)
	c.log.Info("nginx reloaded", "generation", r.Generation, "servers", len(next.Structure.Servers), "took", took.Round(time.Millisecond),
		"render_and_check", checked.Sub(begin).Round(time.Millisecond), "push", pushed.Sub(checked).Round(time.Millisecond),
		"signal_to_serving", (took - pushed.Sub(begin)).Round(time.Millisecond))
	releaseMemory()
}

// releaseMemory collects and returns freed memory to the OS after a reload
// (and the start). A reload is rare and leaves the most garbage behind: the
// previous model, the rendered nginx.conf and the render's scratch space, tens
// of MiB at 10,000 Ingresses. Left to the collector's pace, that memory stays
// resident and the next reload's garbage stacks on top of it (the process's
// peak RSS); the forced collection costs far less than the reload itself.
// Endpoint pushes, the frequent path, never pay it.
func releaseMemory() { debug.FreeOSMemory() }

// holdGC keeps the garbage collector from starting a cycle until the
// returned function is called, unless the memory the runtime holds grows by
// more than the current heap goal. A structural sync at 10,000 Ingresses
// allocates about as much as the controller keeps (model, render, the
// nginx -t candidate), so the collector would otherwise mark the whole
// heap in the middle of it, on the CPU the reload is waiting for
// (measured: +100-200 ms with one CPU). The garbage is collected right
// after, off that path.
func holdGC() (release func()) {
	s := []runtimemetrics.Sample{{Name: "/gc/heap/goal:bytes"}, {Name: "/memory/classes/total:bytes"}}
	runtimemetrics.Read(s)
	prevLimit := debug.SetMemoryLimit(-1)
	if s[0].Value.Kind() == runtimemetrics.KindUint64 && s[1].Value.Kind() == runtimemetrics.KindUint64 {
		if bound := s[0].Value.Uint64() + s[1].Value.Uint64(); bound < math.MaxInt64 {
			debug.SetMemoryLimit(min(prevLimit, int64(bound)))
		}
	}
	// Not -1 (off): turning the collector off waits for a cycle under way
	// to finish, which would hold up endpoint syncs; a goal ten thousand
	// times the live heap starts none and lets one under way run.
	prevPercent := debug.SetGCPercent(1_000_000)
	return func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	}
}

// applyKeepingStructure pushes next's dynamic part while nginx keeps its
// live structure: endpoint changes of the hosts already served still apply.
func (c *Controller) applyKeepingStructure(ctx context.Context, next *model.Model) {
	m := withStructure(next, c.applied)
	if err := c.applyDynamic(ctx, Decide(c.applied, m)); err != nil {
		c.log.Error("push failed; the next sync pushes everything again", "err", err)
		c.pushFailed()
		return
	}
	c.applied = m
}

// withStructure is next with the structure that is live now: used when a
// new structure was rejected but endpoints must still move.
func withStructure(next, live *model.Model) *model.Model {
	m := *next
	if live != nil {
		m.Structure = live.Structure
	}
	return &m
}

func (c *Controller) applyDynamic(ctx context.Context, p Plan) error {
	var errs []error
	if len(p.Backends) > 0 || len(p.RemovedBackends) > 0 {
		errs = append(errs, c.pushBackends(ctx, false, p.Backends, p.RemovedBackends))
	}
	if len(p.Certificates) > 0 || len(p.RemovedCertificates) > 0 {
		errs = append(errs, c.pushCertificates(ctx, false, p.Certificates, p.RemovedCertificates))
	}
	return errors.Join(errs...)
}

// whileNginxRuns is ctx, also cancelled when nginx exits or its control
// socket file is gone (a temp cleaner deletes it; nginx keeps serving but
// nobody can connect): a push retries while the socket cannot be reached,
// and must not hold the sync loop for good. A push failed that way counts
// towards replacing nginx (pushFailed), which makes the socket anew.
func (c *Controller) whileNginxRuns(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	exited := c.proc.Done()
	socket := c.cfg.Nginx.SocketPath()
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		missing := 0
		for {
			select {
			case <-exited:
				cancel()
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if _, err := os.Stat(socket); errors.Is(err, fs.ErrNotExist) {
				if missing++; missing >= socketGrace {
					c.log.Error("the control socket is gone; nginx cannot be reached", "socket", socket)
					cancel()
					return
				}
			} else {
				missing = 0
			}
		}
	}()
	return ctx, cancel
}

// socketGrace is how many seconds in a row the control socket may be
// missing during a push (it is missing for a moment while nginx starts).
const socketGrace = 3

func (c *Controller) pushBackends(ctx context.Context, full bool, bs []model.Backend, removed []string) error {
	ctx, cancel := c.whileNginxRuns(ctx)
	defer cancel()
	begin := time.Now()
	err := c.logRejected("backends", c.push.PushBackends(ctx, full, bs, removed))
	c.observePush("backends", begin, err)
	if err == nil {
		c.log.Debug("backends pushed", "full", full, "changed", len(bs), "removed", len(removed), "took", time.Since(begin))
	}
	return err
}

func (c *Controller) pushCertificates(ctx context.Context, full bool, cs []model.Certificate, removed []string) error {
	ctx, cancel := c.whileNginxRuns(ctx)
	defer cancel()
	begin := time.Now()
	err := c.logRejected("certificates", c.push.PushCertificates(ctx, full, cs, removed))
	c.observePush("certificates", begin, err)
	return err
}

// logRejected logs the items nginx left out of an applied push and
// returns nil for them: the rest was applied, and the same items would be
// refused again until their objects change. Other errors pass through.
func (c *Controller) logRejected(kind string, err error) error {
	var rej *dynamic.RejectedError
	if !errors.As(err, &rej) {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(rej.Rejected)) {
		if kind == "certificates" {
			c.log.Error("nginx could not load a certificate; its hosts keep what they had (the default certificate if nothing)",
				"secret", id, "reason", rej.Rejected[id])
		} else {
			c.log.Error("nginx refused a backend; it keeps what it had (503 if nothing)", "backend", id, "reason", rej.Rejected[id])
		}
	}
	return nil
}

func (c *Controller) observePush(kind string, begin time.Time, err error) {
	c.met.pushSeconds.WithLabelValues(kind).Observe(time.Since(begin).Seconds())
	result := "success"
	if err != nil {
		result = "error"
	}
	c.met.pushes.WithLabelValues(kind, result).Inc()
	c.page.notePush(kind, begin, err)
}

// report logs problems that are new since the last sync (so a standing
// problem is not repeated on every endpoint change) and updates metrics.
func (c *Controller) report(m *model.Model, srcProblems []model.Problem) {
	all := append(append([]model.Problem{}, srcProblems...), m.Problems...)
	seen := map[string]bool{}
	byKind := map[string]int{}
	for _, p := range all {
		s := p.String()
		seen[s] = true
		byKind[p.Kind]++
		if !c.lastProblem[s] {
			c.log.Warn("object skipped", "kind", p.Kind, "object", p.Object, "field", p.Field, "reason", p.Reason)
		}
	}
	c.lastProblem = seen
	c.met.problems.Reset()
	for k, n := range byKind {
		c.met.problems.WithLabelValues(k).Set(float64(n))
	}
	st := *c.status.Load()
	st.Problems = all
	c.status.Store(&st)
}

func (c *Controller) setStatus(reloaded bool) {
	st := *c.status.Load()
	if c.appliedConf != nil {
		st.Generation = c.appliedConf.Generation
	}
	if reloaded {
		st.Reloads++
		st.LastReload = time.Now()
	}
	c.status.Store(&st)
}

// reloadFailed counts a reload that did not happen although the
// configuration is not at fault, and schedules another try: nothing else
// may change for a long time, and the change must still go live.
func (c *Controller) reloadFailed(err error) {
	c.reloadBackoff = min(max(2*c.reloadBackoff, time.Second), time.Minute)
	c.met.reloads.WithLabelValues("failed").Inc()
	c.reloadResult(err, c.reloadBackoff)
	time.AfterFunc(c.reloadBackoff, c.poke)
}

// reloadResult records the outcome of the last reload (the start counts as
// one) for /metrics, /healthz and the status page; retry is when a failed
// one is tried again (0: only when the configuration changes).
func (c *Controller) reloadResult(err error, retry time.Duration) {
	now := time.Now()
	if err != nil {
		c.met.lastReloadOK.Set(0)
		c.met.configLastReloadOK.Set(0)
	} else {
		c.met.lastReloadOK.Set(1)
		c.met.configLastReloadOK.Set(1)
		c.met.configLastReloadOKTime.Set(float64(now.Unix()))
	}
	c.page.noteReloadResult(now, err, retry)
}

// pushFailed marks Lua's state as unknown and schedules a sync, so a failed
// push is retried in full even if nothing else changes. A full push that
// keeps failing (the certificates outgrew their dict) is tried less and
// less often, not at every sync; at maxPushStreak failures in a row,
// /healthz fails and nginx is replaced (once, until a full push succeeds).
func (c *Controller) pushFailed() {
	c.pushStreak++
	if c.pushStreak >= maxPushStreak && !c.replaced {
		c.healthy.Store(false)
		c.replaceNginx = true
	}
	c.needFull = true
	c.fullBackoff = min(max(2*c.fullBackoff, time.Second), time.Minute)
	c.fullAt = time.Now().Add(c.fullBackoff)
	time.AfterFunc(c.fullBackoff, c.poke)
}
