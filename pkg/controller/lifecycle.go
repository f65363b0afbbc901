package controller

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/tidegate/tidegate/pkg/dynamic"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/nginx"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

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
	gen, err := nginx.InstalledGeneration(b)
	if err != nil {
		return nil, fmt.Errorf("%w in %s", err, c.cfg.Nginx.ConfPath())
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
