package main

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// Side by side on one core. The rounds of benchmark 1 compare runs a few
// seconds apart, and on this shared machine the CPU a request costs moves
// by ±5 % between them (other jobs, the hypervisor), more than most of the
// differences the ablation looks for. Here a proxy and the static
// reference are loaded at the same moment on the same core, each by its own
// wrk, and each worker's CPU per request is read over the same window:
// whatever slows the core slows both.
//
// Each proxy runs in a session of its own (startProc), so the kernel's
// autogroup scheduling gives the two workers equal shares of the core. In
// one session with the load generator, a proxy's share is diluted by that
// session's load on the other CPU: by hand, a proxy sharing the session
// with the two wrk processes got a third of the core and the other proxy
// two thirds.
//
// Each worker is about half busy, so this is the cost of a request at half
// load, with more wakeups per request than at saturation. A second copy of
// the static conf checks the method itself: its ratio should be 1.

// sideRun is one window of a proxy and the static reference side by side.
type sideRun struct {
	// Ratio is the proxy's requests per CPU-second of its worker ÷ the
	// static worker's, over the same window.
	Ratio            float64
	RPS, StaticRPS   float64
	Busy, StaticBusy float64 // worker CPU, fraction of one CPU
}

// sideSeries is one proxy's windows, one per round.
type sideSeries struct {
	Name string
	Runs []sideRun
}

func (s sideSeries) ratios() []float64 {
	out := make([]float64, len(s.Runs))
	for i, r := range s.Runs {
		out[i] = r.Ratio
	}
	return out
}

// Ratio is the median over rounds.
func (s sideSeries) Ratio() float64 { return median(s.ratios()) }

// busy is the median busy fraction of the proxy's and the static worker's.
func (s sideSeries) busy() (proxy, static float64) {
	var a, b []float64
	for _, r := range s.Runs {
		a, b = append(a, r.Busy), append(b, r.StaticBusy)
	}
	return median(a), median(b)
}

// namedProxy is a proxy to put beside the static reference.
type namedProxy struct {
	name string
	p    proxyUnderTest
}

// sideDur is the length of one side-by-side window (after a 1 s warm-up of
// both).
func (c *config) sideDur() time.Duration {
	if c.quick {
		return 2 * time.Second
	}
	return 4 * time.Second
}

// runSideBySide puts each of xs beside static, once per round, the proxies
// in turn within a round.
func runSideBySide(cfg *config, static proxyUnderTest, xs []namedProxy) ([]sideSeries, error) {
	out := make([]sideSeries, len(xs))
	for k, x := range xs {
		out[k].Name = x.name
	}
	for i := 0; i < cfg.sideRounds; i++ {
		var line []string
		for k, x := range xs {
			r, err := sideBySide(cfg, x.p, static)
			if err != nil {
				return out, fmt.Errorf("side by side, %s: %w", x.name, err)
			}
			out[k].Runs = append(out[k].Runs, r)
			line = append(line, fmt.Sprintf("%s %.3f", x.name, r.Ratio))
		}
		logf("  side by side, round %d (req per CPU-s ÷ static): %s", i+1, strings.Join(line, ", "))
	}
	return out, nil
}

// sideBySide loads x and static at once and compares their workers' CPU
// per request.
func sideBySide(cfg *config, x, static proxyUnderTest) (sideRun, error) {
	both := func(d time.Duration) (a, b wrkResult, err error) {
		var wg sync.WaitGroup
		var ea, eb error
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, ea = runWrk(wrkArgs(cfg.loadCPU, 1, cfg.wrkConns, d, x.port, benchHost))
		}()
		b, eb = runWrk(wrkArgs(cfg.loadCPU, 1, cfg.wrkConns, d, static.port, benchHost))
		wg.Wait()
		return a, b, errors.Join(ea, eb)
	}
	if _, _, err := both(time.Second); err != nil {
		return sideRun{}, err
	}
	px, ps := x.workers(), static.workers()
	cx0, cs0, t0 := cpuSeconds(px...), cpuSeconds(ps...), time.Now()
	a, b, err := both(cfg.sideDur())
	el := time.Since(t0).Seconds()
	cx, cs := (cpuSeconds(px...)-cx0)/el, (cpuSeconds(ps...)-cs0)/el
	if err != nil {
		return sideRun{}, err
	}
	if a.Non2xx > 0 || b.Non2xx > 0 || a.Errors > 0 || b.Errors > 0 {
		return sideRun{}, fmt.Errorf("non-2xx or socket errors: %d/%d, %d/%d", a.Non2xx, a.Errors, b.Non2xx, b.Errors)
	}
	if cx <= 0 || cs <= 0 || b.RPS <= 0 {
		return sideRun{}, fmt.Errorf("no worker CPU measured (%.3f, %.3f)", cx, cs)
	}
	return sideRun{Ratio: (a.RPS / cx) / (b.RPS / cs), RPS: a.RPS, StaticRPS: b.RPS, Busy: cx, StaticBusy: cs}, nil
}

// The names of the side-by-side series that are not ablation steps.
const (
	sideTwin     = "static (second copy)"
	sideFloor    = "floor"
	sideTidegate = "tidegate"
	// sideNoMetrics is tidegate run with --enable-metrics=false.
	sideNoMetrics = "tidegate --enable-metrics=false"
)

// side returns the series called name, if t has it.
func (t throughput) side(name string) (sideSeries, bool) {
	for _, s := range t.Side {
		if s.Name == name && len(s.Runs) > 0 {
			return s, true
		}
	}
	return sideSeries{}, false
}

// sideCheck says why the side-by-side figures of t cannot be trusted, or
// "" when they can: the core must have been full (the two workers together
// at least 90 % busy), or the windows did not share it; and the second
// copy of the static conf must come out within 2 % of 1. Its distance from
// 1 (err) is how far the method itself was off in this run: a figure
// farther than that from its target still gets a verdict (decides).
func (t throughput) sideCheck() (why string, err float64) {
	twin, ok := t.side(sideTwin)
	if !ok {
		return "not measured", math.Inf(1)
	}
	for _, s := range t.Side {
		if a, b := s.busy(); a+b < 0.9 {
			return fmt.Sprintf("%s and static were %.0f %% + %.0f %% busy: the core was not full", s.Name, 100*a, 100*b), math.Inf(1)
		}
	}
	r := twin.Ratio()
	err = math.Abs(r - 1)
	if err > 0.02 {
		return fmt.Sprintf("the static conf's second copy came out at %.3f×, not 1", r), err
	}
	return "", err
}

// sideDecides reports whether ratio gets a verdict against target: the
// side-by-side check passed, or ratio is farther from target than the
// method was off.
func (t throughput) sideDecides(ratio, target float64) bool {
	why, err := t.sideCheck()
	return why == "" || math.Abs(ratio-target) > err
}

// sideTable renders the side-by-side measurement of both sizes.
func sideTable(res *results) string {
	var b strings.Builder
	if len(res.Small.Side) == 0 {
		return ""
	}
	b.WriteString("**Side by side on one core** (`test/bench/sidebyside.go`). The rounds above compare runs a few seconds apart, and on this shared machine the CPU a request costs moves by about ±5 % between them. Here each proxy and the static conf run at the same moment on the proxy's core, each loaded by its own wrk, and each worker's CPU per request is read over the same window, so whatever slows the core slows both. Every nginx runs in a session of its own, so that the kernel's per-session (autogroup) scheduling gives the two workers equal shares of the core. Each worker is then about half busy: these are costs at half load, where a request pays for more wakeups than at saturation (in the runs so far tidegate came out within 2 % of its saturated per-CPU figure above). A second copy of the static conf checks the method: it should come out at 1.\n\n")
	b.WriteString("| size | beside the static conf | req per CPU-s ÷ static (median) | min–max over rounds | worker busy: it / static | req/s: it / static |\n|---|---|---|---|---|---|\n")
	for _, t := range []throughput{res.Small, res.Large} {
		for _, s := range t.Side {
			if strings.HasPrefix(s.Name, "step ") {
				continue // in the ablation table
			}
			rs := s.ratios()
			lo, hi := slices.Min(rs), slices.Max(rs)
			var a, c []float64
			for _, r := range s.Runs {
				a, c = append(a, r.RPS), append(c, r.StaticRPS)
			}
			pb, sb := s.busy()
			name := s.Name
			if name == sideTidegate {
				name = "**tidegate**"
			}
			fmt.Fprintf(&b, "| %d Ingress(es) | %s | %.3f× | %.3f–%.3f | %.0f %% / %.0f %% | %.0f / %.0f |\n", t.Ingresses, name, s.Ratio(), lo, hi, 100*pb, 100*sb, median(a), median(c))
		}
	}
	b.WriteString("\n")
	for _, t := range []throughput{res.Small, res.Large} {
		why, _ := t.sideCheck()
		if why == "" {
			continue
		}
		if sd, ok := t.side(sideTidegate); ok && t.sideDecides(sd.Ratio(), 0.95) {
			fmt.Fprintf(&b, "At %d Ingress(es) %s: the method was that far off in this run, and tidegate's %.3f× is farther than that from 0.95×, so it still gets a verdict.\n\n", t.Ingresses, why, sd.Ratio())
		} else {
			fmt.Fprintf(&b, "At %d Ingress(es) the side-by-side figures get no verdict: %s.\n\n", t.Ingresses, why)
		}
	}
	return b.String()
}
