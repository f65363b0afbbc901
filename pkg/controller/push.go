package controller

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/tidegate/tidegate/pkg/dynamic"
	"github.com/tidegate/tidegate/pkg/model"
)

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

func (c *Controller) pushAll(ctx context.Context, m *model.Model) error {
	if err := c.pushBackends(ctx, true, m.Dynamic.Backends, nil); err != nil {
		return err
	}
	return c.pushCertificates(ctx, true, m.Dynamic.Certificates, nil)
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
