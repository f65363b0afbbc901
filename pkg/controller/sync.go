package controller

import (
	"context"
	"errors"
	"reflect"
	"time"

	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/nginx"
)

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
