package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	jsoniter "github.com/json-iterator/go"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/tidegate/tidegate/pkg/dynamic"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/nginx"
	"github.com/tidegate/tidegate/pkg/source/files"
	"github.com/tidegate/tidegate/test/harness"
)

// ---- 1. proxy throughput -------------------------------------------------

type throughput struct {
	Ingresses, Endpoints int
	Tidegate, Static     []wrkResult
	// Floor is the static conf with the route behind a bare
	// balancer_by_lua (floorConf), run in the same rounds.
	Floor []wrkResult
	// TidegateCPU, StaticCPU and FloorCPU are the proxy workers' busy
	// fraction of one CPU during each run.
	TidegateCPU, StaticCPU, FloorCPU []float64
	PairRatios                       []float64
	// Ablation is tidegate's conf with pieces taken out (ablation.go), 1
	// route only, run in the same rounds.
	Ablation []ablationRun
	// TidegatePerf and StaticPerf are perf's share of the proxy worker's
	// CPU samples per shared object, from one extra run each.
	TidegatePerf, StaticPerf map[string]float64
	TidegateCmd              string
	StaticCmd                string
	// Side is the side-by-side measurement (sidebyside.go): a second copy
	// of the static conf, the floor, tidegate and the ablation steps, each
	// beside the static conf on one core.
	Side []sideSeries
}

func (t throughput) medians(rs []wrkResult) (rps float64, p50, p99 time.Duration) {
	var xs []float64
	var a, b []time.Duration
	for _, r := range rs {
		xs = append(xs, r.RPS)
		a = append(a, r.P50)
		b = append(b, r.P99)
	}
	return median(xs), medianDur(a), medianDur(b)
}

// Ratio is the median of the per-pair ratios (each pair ran back to back,
// so slow drifts of the machine's load cancel out).
func (t throughput) Ratio() float64 { return median(t.PairRatios) }

// roundRatio is the median over rounds of a's req/s over b's (0 when a
// round is missing, as in results from before the floor was measured).
func roundRatio(a, b []wrkResult) float64 {
	var xs []float64
	for i := range a {
		if i < len(b) && b[i].RPS > 0 {
			xs = append(xs, a[i].RPS/b[i].RPS)
		}
	}
	return median(xs)
}

// FloorRatio is the bare balancer_by_lua against the static conf;
// OverFloor is tidegate against the bare balancer_by_lua.
func (t throughput) FloorRatio() float64 { return roundRatio(t.Floor, t.Static) }
func (t throughput) OverFloor() float64  { return roundRatio(t.Tidegate, t.Floor) }

// PerCPU is requests per CPU-second of the proxy worker (median over runs).
func (t throughput) PerCPU(tidegate bool) float64 {
	if tidegate {
		return perCPU(t.Tidegate, t.TidegateCPU)
	}
	return perCPU(t.Static, t.StaticCPU)
}

// FloorPerCPU is PerCPU of the bare balancer_by_lua floor.
func (t throughput) FloorPerCPU() float64 { return perCPU(t.Floor, t.FloorCPU) }

// CPURatio is the median over rounds of tidegate's requests per
// CPU-second over the static conf's in the same round; FloorCPURatio the
// floor's over the static conf's, OverFloorCPU tidegate's over the
// floor's. Paired by round like Ratio, so a round the machine slowed as a
// whole moves them less than a ratio of medians would.
func (t throughput) CPURatio() float64 {
	return perCPURatio(t.Tidegate, t.TidegateCPU, t.Static, t.StaticCPU)
}
func (t throughput) FloorCPURatio() float64 {
	return perCPURatio(t.Floor, t.FloorCPU, t.Static, t.StaticCPU)
}
func (t throughput) OverFloorCPU() float64 {
	return perCPURatio(t.Tidegate, t.TidegateCPU, t.Floor, t.FloorCPU)
}

// Implausible reports why this size's rounds cannot be trusted, or "":
// the floor is the static conf plus a Lua hook and tidegate's conf is more
// than the floor, so neither can really serve more requests per CPU-second
// than the one below it. When the medians say so by more than a few per
// cent, other load on the machine moved the runs more than the proxies
// differ.
func (t throughput) Implausible() string {
	const slack = 1.03
	if len(t.Floor) == 0 {
		if r := t.CPURatio(); r > slack {
			return fmt.Sprintf("tidegate served %.2f× the static conf's requests per CPU-second", r)
		}
		return ""
	}
	if r := t.FloorCPURatio(); r > slack {
		return fmt.Sprintf("the bare balancer_by_lua floor served %.2f× the static conf's requests per CPU-second", r)
	}
	if r := t.OverFloorCPU(); r > slack {
		return fmt.Sprintf("tidegate served %.2f× the floor's requests per CPU-second", r)
	}
	return ""
}

// Unsaturated reports why this size's req/s ratio does not measure the
// proxies, or "": a req/s ratio is their cost only while both workers are
// the bottleneck; below that, wrk and the backend set the pace.
func (t throughput) Unsaturated() string {
	const busy = 0.95
	if tc, sc := median(t.TidegateCPU), median(t.StaticCPU); tc < busy || sc < busy {
		return fmt.Sprintf("the proxy workers were %.0f %% (tidegate) and %.0f %% (static) busy, below %.0f %%", 100*tc, 100*sc, 100*busy)
	}
	return ""
}

// perCPURatio is the median over rounds of cpuRatioAt.
func perCPURatio(a []wrkResult, ac []float64, b []wrkResult, bc []float64) float64 {
	var xs []float64
	for i := range a {
		if v, ok := cpuRatioAt(a, ac, b, bc, i); ok {
			xs = append(xs, v)
		}
	}
	return median(xs)
}

// cpuRatioAt is a's requests per CPU-second over b's in round i (a's runs
// and worker CPU shares ac against b's and bc); false when that round is
// missing or has no CPU figure.
func cpuRatioAt(a []wrkResult, ac []float64, b []wrkResult, bc []float64, i int) (float64, bool) {
	if i >= len(a) || i >= len(ac) || i >= len(b) || i >= len(bc) || ac[i] <= 0 || bc[i] <= 0 || b[i].RPS <= 0 {
		return 0, false
	}
	return (a[i].RPS / ac[i]) / (b[i].RPS / bc[i]), true
}

func perCPU(rs []wrkResult, cs []float64) float64 {
	var xs []float64
	for i := range rs {
		if i < len(cs) && cs[i] > 0 {
			xs = append(xs, rs[i].RPS/cs[i])
		}
	}
	return median(xs)
}

// proxyUnderTest is one of the nginx instances runThroughput compares.
type proxyUnderTest struct {
	port    int
	workers func() []int
}

// ablationProxy is the nginx of one ablation step.
type ablationProxy struct {
	proxyUnderTest
	step ablationStep
}

// runThroughput runs wrk against tidegate, the static nginx and the bare
// balancer_by_lua nginx in turn, round after round, after one warm-up run
// each.
// extra are more proxies for the side-by-side measurement only.
func runThroughput(cfg *config, n, endpoints int, tg proxyUnderTest, refs references, ablation []ablationProxy, extra ...namedProxy) (throughput, error) {
	static, floor := refs.static, refs.floor
	t := throughput{Ingresses: n, Endpoints: endpoints, Ablation: make([]ablationRun, len(ablation))}
	for k, a := range ablation {
		t.Ablation[k] = ablationRun{Name: a.step.Name, Removed: a.step.Removed}
	}
	argv := func(port int, d time.Duration) []string {
		return wrkArgs(cfg.loadCPU, 1, cfg.wrkConns, d, port, benchHost)
	}
	t.TidegateCmd = strings.Join(argv(tg.port, cfg.wrkDur), " ")
	t.StaticCmd = strings.Join(argv(static.port, cfg.wrkDur), " ")
	all := []proxyUnderTest{tg, static, floor}
	for _, a := range ablation {
		all = append(all, a.proxyUnderTest)
	}
	for _, p := range all {
		if _, err := runWrk(argv(p.port, cfg.warmDur)); err != nil {
			return t, err
		}
	}
	measure := func(p proxyUnderTest, rs *[]wrkResult, cs *[]float64) (wrkResult, error) {
		pids := p.workers()
		c0, t0 := cpuSeconds(pids...), time.Now()
		r, err := runWrk(argv(p.port, cfg.wrkDur))
		*rs = append(*rs, r)
		*cs = append(*cs, (cpuSeconds(pids...)-c0)/time.Since(t0).Seconds())
		return r, err
	}
	for i := 0; i < cfg.pairs; i++ {
		a, err := measure(tg, &t.Tidegate, &t.TidegateCPU)
		if err != nil {
			return t, err
		}
		b, err := measure(static, &t.Static, &t.StaticCPU)
		if err != nil {
			return t, err
		}
		c, err := measure(floor, &t.Floor, &t.FloorCPU)
		if err != nil {
			return t, err
		}
		var steps []string
		for k, ab := range ablation {
			r, err := measure(ab.proxyUnderTest, &t.Ablation[k].Runs, &t.Ablation[k].CPU)
			if err != nil {
				return t, err
			}
			steps = append(steps, fmt.Sprintf("%.3f", r.RPS/b.RPS))
		}
		t.PairRatios = append(t.PairRatios, a.RPS/b.RPS)
		logf("  round %d: tidegate %.0f req/s (p99 %s, non-2xx %d, worker CPU %.0f%%), static %.0f req/s (p99 %s, non-2xx %d, worker CPU %.0f%%): %.3fx; bare balancer_by_lua %.0f req/s (%.3fx of static)",
			i+1, a.RPS, a.P99, a.Non2xx, 100*t.TidegateCPU[i], b.RPS, b.P99, b.Non2xx, 100*t.StaticCPU[i], a.RPS/b.RPS, c.RPS, c.RPS/b.RPS)
		if len(steps) > 0 {
			logf("  round %d: ablation steps ÷ static: %s", i+1, strings.Join(steps, ", "))
		}
	}
	// One more run each under perf (not counted above): where the worker's
	// CPU goes.
	for _, v := range []struct {
		p   proxyUnderTest
		dst *map[string]float64
	}{{tg, &t.TidegatePerf}, {static, &t.StaticPerf}} {
		pids := v.p.workers()
		if len(pids) == 0 {
			continue
		}
		done := make(chan struct{})
		go func() { runWrk(argv(v.p.port, cfg.wrkDur)); close(done) }()
		time.Sleep(cfg.wrkDur / 4)
		*v.dst = perfShare(pids[0], cfg.wrkDur/2, cfg.tmp)
		<-done
	}
	if t.TidegatePerf != nil {
		logf("  perf: Lua share of the tidegate worker's CPU samples %.1f%%", luaShare(t.TidegatePerf))
	}
	side := append([]namedProxy{{sideTwin, refs.twin}, {sideFloor, floor}, {sideTidegate, tg}}, extra...)
	for k, a := range ablation {
		side = append(side, namedProxy{fmt.Sprintf("step %d", k+1), a.proxyUnderTest})
	}
	var err error
	t.Side, err = runSideBySide(cfg, static, side)
	return t, err
}

// ---- 2. endpoint propagation ---------------------------------------------

type propagation struct {
	Ingresses int
	Samples   []time.Duration
	Failures  int
	// FilesLoad and Build are a cold read of the whole directory and
	// model.Build of everything; Update is model.Update of one slice
	// change, what the controller does per endpoint change (in-process
	// medians, this program's CPU).
	FilesLoad, Build, Update time.Duration
}

// controllerWork times files.Load + model.Build of dir, as the file source
// and the controller do on every change.
func controllerWork(dir string, reps int) (load, build time.Duration) {
	var ls, bs []time.Duration
	for i := 0; i < reps; i++ {
		t0 := time.Now()
		snap, _ := files.Load(dir)
		t1 := time.Now()
		model.Build(snap, model.DefaultOptions())
		ls, bs = append(ls, t1.Sub(t0)), append(bs, time.Since(t1))
	}
	return medianDur(ls), medianDur(bs)
}

// updateWork times model.Update of one endpoint change in dir: the route
// under test's slice replaced by one with another address.
func updateWork(dir string, reps int) time.Duration {
	snap, _ := files.Load(dir)
	opts := model.DefaultOptions()
	prev := model.Build(snap, opts)
	var es *discoveryv1.EndpointSlice
	for _, s := range snap.EndpointSlices {
		if s.Name == "bench" && len(s.Endpoints) > 0 {
			es = s.DeepCopy()
		}
	}
	if es == nil {
		return 0
	}
	es.Endpoints[0].Addresses = []string{propB}
	next, ok := snap.ReplaceEndpointSlices([]*discoveryv1.EndpointSlice{es})
	if !ok {
		return 0
	}
	var ds []time.Duration
	for i := 0; i < reps; i++ {
		t0 := time.Now()
		model.Update(prev, snap, next, opts)
		ds = append(ds, time.Since(t0))
	}
	return medianDur(ds)
}

// runPropagation moves the route under test between two endpoints that
// answer "A" and "B": write the EndpointSlice file (atomic rename), then
// poll through the proxy until the new endpoint answers.
func runPropagation(tg *tidegate, n, changes, backendPort int) (propagation, error) {
	p := propagation{Ingresses: n}
	p.FilesLoad, p.Build = controllerWork(tg.Dir, 3)
	p.Update = updateWork(tg.Dir, 5)
	c := hostClient(tg.HTTP, 1)
	write := func(addr string) error {
		return harness.WriteManifest(tg.Dir, "bench-slice.yaml", harness.SliceYAML("bench", "bench", backendPort, []string{addr}))
	}
	if err := write(propA); err != nil {
		return p, err
	}
	if err := waitServes(tg.HTTP, benchHost, "A", 60*time.Second); err != nil {
		return p, err
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < changes; i++ {
		addr, want := propB, "B"
		if i%2 == 1 {
			addr, want = propA, "A"
		}
		t0 := time.Now()
		if err := write(addr); err != nil {
			return p, err
		}
		var took time.Duration
		for {
			st, body, err := get(c, benchHost)
			if err == nil && st == 200 && len(body) > 0 && string(body[:1]) == want {
				took = time.Since(t0)
				break
			}
			if time.Since(t0) > 10*time.Second {
				p.Failures++
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		if took > 0 {
			p.Samples = append(p.Samples, took)
		}
		// Jitter so changes do not fall into step with the watcher's
		// debounce or the workers' 10 ms timer.
		time.Sleep(time.Duration(20+rng.IntN(20)) * time.Millisecond)
	}
	// Back to the live endpoints for the next benchmark.
	if err := harness.WriteManifest(tg.Dir, "bench-slice.yaml", harness.SliceYAML("bench", "bench", backendPort, liveAddrs)); err != nil {
		return p, err
	}
	return p, waitServes(tg.HTTP, benchHost, fixedBody[:8], 60*time.Second)
}

// ---- 3. churn under load -------------------------------------------------

type churn struct {
	MaxRPS           float64 // wrk closed-loop maximum through tidegate (benchmark 1)
	Target           float64 // half of it
	Conns            int     // wrk connections, each pausing DelayMS between requests
	DelayMS          int
	Cmd              string
	Duration         time.Duration
	Base, Churn      wrkResult // combined over the chunks
	Quiet, Churned   []wrkResult
	Writes           int
	ChangesPerSecond float64
	Reloads          float64
	Pushes           float64
	Syncs            float64
	// CPU used, as a fraction of one CPU, by the tidegate process and by
	// its nginx (master + worker), quiet and with churn.
	CtlCPUQuiet, CtlCPUChurn     float64
	NginxCPUQuiet, NginxCPUChurn float64
}

// Ratio is the median of PairRatios: like benchmark 1's ratios, it compares
// runs back to back, so the machine's other load drifting over the minute
// moves it less than the ratio of the means (MeanRatio) does.
func (c churn) Ratio() float64 { return median(c.PairRatios()) }

// MeanRatio is the mean churn req/s over the mean quiet req/s.
func (c churn) MeanRatio() float64 { return c.Churn.RPS / c.Base.RPS }

// PairRatios are, per churn chunk, its req/s over the mean of the quiet
// chunks right before and right after it (before alone for the last one).
func (c churn) PairRatios() []float64 {
	var out []float64
	for i, r := range c.Churned {
		if i >= len(c.Quiet) {
			break
		}
		q := c.Quiet[i].RPS
		if i+1 < len(c.Quiet) {
			q = (q + c.Quiet[i+1].RPS) / 2
		}
		out = append(out, r.RPS/q)
	}
	return out
}

const delayScript = `-- wrk: each connection waits between requests, so the load is about
-- connections / (delay + latency) requests per second, well below the maximum.
local d = tonumber(os.getenv("BENCH_DELAY_MS") or "2")
function delay() return d end
`

// combine sums requests/s-weighted results of equal-length wrk runs:
// mean req/s, summed non-2xx and errors, median p50 and p99.
func combine(rs []wrkResult) wrkResult {
	var out wrkResult
	var p50, p99 []time.Duration
	for _, r := range rs {
		out.RPS += r.RPS / float64(len(rs))
		out.Non2xx += r.Non2xx
		out.Errors += r.Errors
		p50, p99 = append(p50, r.P50), append(p99, r.P99)
	}
	out.P50, out.P99 = medianDur(p50), medianDur(p99)
	return out
}

// runChurn holds about half of tidegate's maximum with wrk (each connection
// pauses between requests: wrk2 is not available to hold a rate) once
// quiet and once while the route's EndpointSlice file is rewritten every
// 10 ms (its 10 live endpoints with one left out in turn, so every write is
// a real change and every listed endpoint answers).
func runChurn(cfg *config, root string, tg *tidegate, maxRPS float64, backendPort int) (churn, error) {
	ch := churn{MaxRPS: maxRPS, Target: maxRPS / 2, Duration: cfg.churnDur, DelayMS: 2}
	script := filepath.Join(root, "delay.lua")
	if err := os.WriteFile(script, []byte(delayScript), 0o644); err != nil {
		return ch, err
	}
	wrk := func(conns int, d time.Duration) (wrkResult, []string, error) {
		argv := wrkArgs(cfg.loadCPU, 1, conns, d, tg.HTTP, benchHost)
		argv = append(argv[:len(argv)-1], "-s", script, argv[len(argv)-1])
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), fmt.Sprintf("BENCH_DELAY_MS=%d", ch.DelayMS))
		r, err := runWrkCmd(cmd)
		return r, argv, err
	}
	// Calibrate: connections for half the maximum, from a short run.
	ch.Conns = max(2, int(ch.Target*float64(ch.DelayMS)/1000+0.5))
	for i := 0; i < 2; i++ {
		r, _, err := wrk(ch.Conns, 3*time.Second)
		if err != nil {
			return ch, err
		}
		ch.Conns = max(2, int(float64(ch.Conns)*ch.Target/r.RPS+0.5))
		logf("  calibration: %.0f req/s, next %d connections", r.RPS, ch.Conns)
	}
	ctl, ngx := tg.cmd.Process.Pid, tg.NginxPIDs()
	m0, err := tg.Metrics()
	if err != nil {
		return ch, err
	}
	// Quiet and churn alternate in chunks, so slow swings in the machine's
	// other load hit both alike; each churn chunk is compared with the
	// quiet ones around it (Ratio). The writer runs in quiet chunks too,
	// into a directory tidegate does not watch: writing 100 files a second
	// costs this program CPU on wrk's and the backend's core, which is
	// the load generator's cost, not tidegate's.
	shadow, err := os.MkdirTemp(filepath.Dir(tg.Dir), "churn-shadow-")
	if err != nil {
		return ch, err
	}
	defer os.RemoveAll(shadow)
	chunks := 6
	chunk := ch.Duration / time.Duration(chunks)
	var quiet, churned []wrkResult
	var qSec, cSec, qCtl, cCtl, qNgx, cNgx float64
	for i := 0; i < 2*chunks; i++ {
		withChurn := i%2 == 1
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var werr error
		dir := shadow
		if withChurn {
			dir = tg.Dir
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for k := ch.Writes; ; k++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				addrs := append([]string(nil), liveAddrs...)
				skip := k % len(addrs)
				addrs = append(addrs[:skip], addrs[skip+1:]...)
				if err := harness.WriteManifest(dir, "bench-slice.yaml", harness.SliceYAML("bench", "bench", backendPort, addrs)); err != nil {
					werr = err
					return
				}
				if withChurn {
					ch.Writes++
				}
			}
		}()
		c0, n0, t0 := cpuSeconds(ctl), cpuSeconds(ngx...), time.Now()
		r, argv, err := wrk(ch.Conns, chunk)
		el := time.Since(t0).Seconds()
		dc, dn := cpuSeconds(ctl)-c0, cpuSeconds(ngx...)-n0
		close(stop)
		wg.Wait()
		if err != nil {
			return ch, err
		}
		if werr != nil {
			return ch, werr
		}
		ch.Cmd = fmt.Sprintf("BENCH_DELAY_MS=%d %s", ch.DelayMS, strings.Join(argv, " "))
		if withChurn {
			churned = append(churned, r)
			cSec, cCtl, cNgx = cSec+el, cCtl+dc, cNgx+dn
			logf("  churn chunk: %.0f req/s, p99 %s", r.RPS, r.P99)
		} else {
			quiet = append(quiet, r)
			qSec, qCtl, qNgx = qSec+el, qCtl+dc, qNgx+dn
			logf("  quiet chunk: %.0f req/s, p99 %s", r.RPS, r.P99)
		}
		if withChurn {
			// Let the last change settle before the next quiet chunk.
			time.Sleep(100 * time.Millisecond)
		}
	}
	ch.ChangesPerSecond = float64(ch.Writes) / cSec
	ch.CtlCPUQuiet, ch.NginxCPUQuiet = qCtl/qSec, qNgx/qSec
	ch.CtlCPUChurn, ch.NginxCPUChurn = cCtl/cSec, cNgx/cSec
	ch.Base, ch.Churn = combine(quiet), combine(churned)
	ch.Quiet, ch.Churned = quiet, churned
	time.Sleep(200 * time.Millisecond)
	m1, err := tg.Metrics()
	if err != nil {
		return ch, err
	}
	ch.Reloads = m1[`tidegate_reloads_total{result="success"}`] - m0[`tidegate_reloads_total{result="success"}`]
	ch.Pushes = m1[`tidegate_pushes_total{kind="backends",result="success"}`] - m0[`tidegate_pushes_total{kind="backends",result="success"}`]
	ch.Syncs = m1["tidegate_syncs_total"] - m0["tidegate_syncs_total"]
	if err := harness.WriteManifest(tg.Dir, "bench-slice.yaml", harness.SliceYAML("bench", "bench", backendPort, liveAddrs)); err != nil {
		return ch, err
	}
	return ch, nil
}

// ---- 5. push cost ----------------------------------------------------------

type pushCost struct {
	Backends, Endpoints int
	JSONBytes           int
	Encode              time.Duration // Go side, json-iterator, median
	Push                []time.Duration
	// Unchanged are full pushes of exactly what Lua holds: every backend
	// line is recognised by its digest, nothing decoded, stored or rebuilt.
	Unchanged    []time.Duration
	Base, During latencySet
	Pushes       int
}

type latencySet struct {
	N             int
	P50, P99, Max time.Duration
}

func newLatencySet(ds []time.Duration) latencySet {
	return latencySet{N: len(ds), P50: pct(ds, 50), P99: pct(ds, 99), Max: pct(ds, 100)}
}

// runPush pushes every backend of the running fleet in full (all endpoint
// weights changed, so Lua stores all of them; workers rebuild those they built)
// straight to the control socket with pkg/dynamic, while two clients send
// requests back to back; it compares their latency during pushes with a
// quiet period.
func runPush(cfg *config, tg *tidegate) (pushCost, error) {
	var pc pushCost
	snap, _ := files.Load(tg.Dir)
	m := model.Build(snap, model.DefaultOptions())
	orig := m.Dynamic.Backends
	pc.Backends = len(orig)
	for _, b := range orig {
		pc.Endpoints += len(b.Endpoints)
	}
	withWeight := func(w int) []model.Backend {
		out := make([]model.Backend, len(orig))
		for i, b := range orig {
			b.Endpoints = append([]model.Endpoint(nil), b.Endpoints...)
			for k := range b.Endpoints {
				b.Endpoints[k].Weight = w
			}
			out[i] = b
		}
		return out
	}
	var encs []time.Duration
	for i := 0; i < 5; i++ {
		// what pkg/dynamic sends: one line per backend
		t0 := time.Now()
		size := 0
		for k := range orig {
			line, _ := jsoniter.ConfigCompatibleWithStandardLibrary.Marshal(&orig[k])
			size += len(line) + 1
		}
		encs = append(encs, time.Since(t0))
		pc.JSONBytes = size
	}
	pc.Encode = medianDur(encs)

	set := nginx.Settings{WorkDir: tg.Work}
	token, err := nginx.ReadToken(set.TokenPath())
	if err != nil {
		return pc, err
	}
	client := dynamic.New(set.SocketPath(), token)
	type sample struct {
		at  time.Time
		lat time.Duration
	}
	var (
		mu      sync.Mutex
		samples []sample
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := hostClient(tg.HTTP, 1)
			var mine []sample
			for {
				select {
				case <-stop:
					mu.Lock()
					samples = append(samples, mine...)
					mu.Unlock()
					return
				default:
				}
				t0 := time.Now()
				if st, _, err := get(c, benchHost); err != nil || st != 200 {
					continue
				}
				mine = append(mine, sample{t0, time.Since(t0)})
			}
		}()
	}
	quiet := 3 * time.Second
	time.Sleep(quiet)
	quietEnd := time.Now()
	type window struct{ from, to time.Time }
	var windows []window
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for r := 0; r < cfg.pushes; r++ {
		bs := withWeight(2 + r%2)
		t0 := time.Now()
		res, err := client.PushBackendsResult(ctx, true, bs, nil)
		d := time.Since(t0)
		if err != nil {
			close(stop)
			wg.Wait()
			return pc, err
		}
		if res.Changed < len(bs) {
			logf("  push %d changed only %d of %d backends", r, res.Changed, len(bs))
		}
		pc.Push = append(pc.Push, d)
		// A request started up to 200 ms after the push returned may be
		// the one that makes its worker rebuild every backend.
		windows = append(windows, window{t0, t0.Add(d + 200*time.Millisecond)})
		time.Sleep(600 * time.Millisecond)
	}
	last := withWeight(2 + (cfg.pushes-1)%2)
	for r := 0; r < 3; r++ {
		t0 := time.Now()
		if _, err := client.PushBackendsResult(ctx, true, last, nil); err != nil {
			close(stop)
			wg.Wait()
			return pc, err
		}
		pc.Unchanged = append(pc.Unchanged, time.Since(t0))
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	pc.Pushes = cfg.pushes
	var base, during []time.Duration
	for _, s := range samples {
		if s.at.Before(quietEnd) {
			base = append(base, s.lat)
			continue
		}
		for _, w := range windows {
			if !s.at.Before(w.from) && s.at.Before(w.to) {
				during = append(during, s.lat)
				break
			}
		}
	}
	pc.Base, pc.During = newLatencySet(base), newLatencySet(during)
	// Leave Lua as the controller believes it is.
	if _, err := client.PushBackendsResult(ctx, true, orig, nil); err != nil {
		return pc, err
	}
	return pc, nil
}

// ---- 4b. structural scale through tidegate local ---------------------------

type scaleLive struct {
	Ingresses, Endpoints int
	Startup              time.Duration // process start to /healthz 200
	ConfBytes            int
	NginxT               time.Duration // median `nginx -t` of the live conf
	// NginxTPerHost is `nginx -t` of the same manifests rendered with one
	// server block per host (see perHostConf).
	NginxTPerHost time.Duration
	FilesLoad     time.Duration // files.Load of the manifest directory
	// ReloadsFailed counts reloads tidegate reported as failed
	// (tidegate_reloads_total{result="failed"}) although the host came up.
	ReloadsFailed int
	// ReloadError is why a new host did not come up, if one did not.
	ReloadError string
	// StartError is why tidegate local did not become healthy, if it did not.
	StartError string
	// PeakRSSStart is the controller's largest RSS seen while starting.
	PeakRSSStart int64
	// Alone is nginx without tidegate on the same conf, as rendered and
	// with one server block per host (see perHostConf).
	Alone        []nginxAlone
	ReloadWall   []time.Duration
	ReloadMetric []float64
	RSS, HWM     int64 // after the reloads
	RSSStart     int64
	NginxRSS     int64 // master + workers
}

// runReloads adds Ingresses for new hosts (served by the live bench
// Service) and times each from the file rename to the host answering.
func runReloads(tg *tidegate, sl *scaleLive, k int) error {
	for j := 1; j <= k; j++ {
		host := fmt.Sprintf("new%d-%d.local", sl.Ingresses, j)
		r0 := tg.Metric(`tidegate_reloads_total{result="success"}`)
		f0 := tg.Metric(`tidegate_reloads_total{result="failed"}`)
		t0 := time.Now()
		if err := harness.WriteManifest(tg.Dir, fmt.Sprintf("new-%d.yaml", j), ingressYAML(fmt.Sprintf("new-%d", j), host, "bench")); err != nil {
			return err
		}
		if err := waitServes(tg.HTTP, host, fixedBody[:8], 4*time.Minute); err != nil {
			sl.ReloadError = err.Error()
			logf("  reload %d: %v", j, err)
			break
		}
		sl.ReloadWall = append(sl.ReloadWall, time.Since(t0))
		// The metric is set right after the new workers answer; wait for it.
		for i := 0; i < 200 && tg.Metric(`tidegate_reloads_total{result="success"}`) <= r0; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if tg.Metric(`tidegate_reloads_total{result="success"}`) > r0 {
			sl.ReloadMetric = append(sl.ReloadMetric, tg.Metric("tidegate_last_reload_duration_seconds"))
		} else {
			// tidegate gave up waiting for the new generation (its reload
			// wait is bounded) and counted a failed reload, although nginx
			// got there in the end; the gauge is only set on success.
			sl.ReloadMetric = append(sl.ReloadMetric, -1)
			if tg.Metric(`tidegate_reloads_total{result="failed"}`) > f0 {
				sl.ReloadsFailed++
			}
		}
		logf("  reload %d: host answers after %s (tidegate_last_reload_duration_seconds %.3f)", j, sl.ReloadWall[j-1].Round(time.Millisecond), sl.ReloadMetric[j-1])
	}
	sl.RSS, sl.HWM = tg.RSS()
	for _, pid := range tg.NginxPIDs() {
		r, _ := procMem(pid)
		sl.NginxRSS += r
	}
	reps := 3
	if sl.Ingresses >= 5000 {
		reps = 1 // each `nginx -t` takes tens of seconds at this size
	}
	return checkTimes(tg, sl, reps)
}

// checkTimes times `nginx -t` of the conf tidegate rendered last, as is and
// with one server block per host, and the file source's read of the
// directory.
func checkTimes(tg *tidegate, sl *scaleLive, reps int) error {
	conf, err := os.ReadFile(filepath.Join(tg.Work, "nginx.conf"))
	if err != nil {
		return err
	}
	sl.ConfBytes = len(conf)
	var ts []time.Duration
	for i := 0; i < reps; i++ {
		t0 := time.Now()
		out, err := exec.Command("nginx", "-t", "-q", "-p", tg.Work, "-c", filepath.Join(tg.Work, "nginx.conf"),
			"-e", filepath.Join(tg.Work, "logs", "bench-check.log")).CombinedOutput()
		if err != nil {
			return fmt.Errorf("nginx -t: %s", out)
		}
		ts = append(ts, time.Since(t0))
	}
	sl.NginxT = medianDur(ts)
	perHost, err := perHostConf(tg)
	if err != nil {
		return err
	}
	alt := filepath.Join(tg.Work, "check", "per-host.conf")
	if err := os.WriteFile(alt, perHost, 0o644); err != nil {
		return err
	}
	ts = ts[:0]
	for i := 0; i < reps; i++ {
		t0 := time.Now()
		out, err := exec.Command("nginx", "-t", "-q", "-p", tg.Work, "-c", alt,
			"-e", filepath.Join(tg.Work, "logs", "bench-check.log")).CombinedOutput()
		if err != nil {
			return fmt.Errorf("nginx -t (one server block per host): %s", out)
		}
		ts = append(ts, time.Since(t0))
	}
	sl.NginxTPerHost = medianDur(ts)
	sl.FilesLoad, _ = controllerWork(tg.Dir, reps)
	logf("   nginx -t %s; with one server block per host %s; files.Load %s", sl.NginxT.Round(time.Millisecond), sl.NginxTPerHost.Round(time.Millisecond), sl.FilesLoad.Round(time.Millisecond))
	return nil
}

// perHostConf renders the manifests tidegate serves with one server block
// per host (nginx.Settings.ServerPerHost): the configuration tidegate wrote
// before host groups, for the same working directory and ports, to measure
// nginx on both side by side.
func perHostConf(tg *tidegate) ([]byte, error) {
	snap, _ := files.Load(tg.Dir)
	m := model.Build(snap, model.DefaultOptions())
	set := nginx.Settings{WorkDir: tg.Work, HTTPPort: tg.HTTP, HTTPSPort: tg.HTTPS,
		Resolvers: nginx.SystemResolvers(), ServerPerHost: true}
	if os.Geteuid() == 0 { // as tidegate local does
		w, err := nginx.LookupWorkerUser("nobody")
		if err != nil {
			return nil, err
		}
		set.Workers = w
	}
	r, err := nginx.Render(m.Structure, set)
	if err != nil {
		return nil, err
	}
	return r.Conf, nil
}
