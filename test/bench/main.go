// Command bench measures tidegate's data plane and control plane against
// plain nginx on this machine and writes BENCHMARKS.md (run by `make bench`):
//
//	go run ./test/bench -out BENCHMARKS.md          # the full run, ~12 minutes (half of it 10,000 Ingresses)
//	go run ./test/bench -quick -out /tmp/quick.md   # a smoke run of a few minutes
//	go run ./test/bench -from results.json -out BENCHMARKS.md  # rewrite the report from -results JSON
//
// Everything runs on loopback: a backend nginx answering a fixed body,
// `tidegate local` (bin/tidegate, built by `make build`), the same nginx
// binary with a hand-written static conf as the reference, and wrk. The
// figures are ratios measured side by side in one run; absolute numbers are
// not comparable across machines or runs.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tidegate/tidegate/pkg/source/files"
)

type config struct {
	quick                  bool
	out, plots, bin        string
	proxyCPU, loadCPU      string
	wrkConns               int
	wrkDur, warmDur        time.Duration
	pairs                  int
	sideRounds             int // side-by-side windows per proxy (sidebyside.go)
	changes, changesLarge  int
	churnDur               time.Duration
	pushes                 int
	reloads                int
	renderSizes, liveSizes []int
	keep                   bool
	resultsOut, from       string
	tmp                    string // the working directory of this run
}

var t0 = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(t0).Seconds(), fmt.Sprintf(format, args...))
}

func main() {
	cfg := &config{}
	flag.BoolVar(&cfg.quick, "quick", false, "a ~2-minute smoke run: shorter runs, no 10,000-Ingress tidegate")
	flag.StringVar(&cfg.out, "out", "BENCHMARKS.md", "report to write")
	flag.StringVar(&cfg.plots, "plots", "test/bench/plots", "directory for the SVG plots (linked from the report)")
	flag.StringVar(&cfg.bin, "bin", "bin/tidegate", "tidegate binary (built with `go build` when missing)")
	flag.StringVar(&cfg.proxyCPU, "proxy-cpu", "0", "CPU list for tidegate, its nginx and the static nginx (taskset -c)")
	flag.StringVar(&cfg.loadCPU, "load-cpu", "1", "CPU list for wrk, the backend nginx and this program")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the working directory (manifests, nginx logs, profiles)")
	flag.StringVar(&cfg.resultsOut, "results", "", "also write the raw results as JSON to this file")
	flag.StringVar(&cfg.from, "from", "", "measure nothing: rewrite the report from a -results JSON file")
	fleetDir := flag.String("write-fleet", "", "write the manifests of -fleet-size Ingresses to this directory and exit (to reproduce by hand)")
	fleetSize := flag.Int("fleet-size", 1000, "Ingresses for -write-fleet")
	fleetPort := flag.Int("fleet-port", 8081, "backend port for -write-fleet")
	propOnly := flag.Int("propagation", 0, "measure only endpoint propagation with this many Ingresses (-changes of them), print the figures and exit; the report is not written")
	propChanges := flag.Int("changes", 60, "changes for -propagation")
	flag.Parse()
	if *fleetDir != "" {
		if err := writeFleet(*fleetDir, *fleetSize, *fleetPort, liveAddrs); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if runtime.NumCPU() < 2 {
		cfg.proxyCPU, cfg.loadCPU = "", ""
	}
	cfg.wrkConns = 50
	if cfg.quick {
		cfg.wrkDur, cfg.warmDur, cfg.pairs, cfg.sideRounds = 3*time.Second, 1*time.Second, 3, 2
		cfg.changes, cfg.changesLarge = 200, 30
		cfg.churnDur, cfg.pushes, cfg.reloads = 15*time.Second, 5, 2
		cfg.renderSizes, cfg.liveSizes = []int{100, 1000, 10000}, []int{1000}
	} else {
		cfg.wrkDur, cfg.warmDur, cfg.pairs, cfg.sideRounds = 5*time.Second, 2*time.Second, 7, 5
		cfg.changes, cfg.changesLarge = 300, 60
		cfg.churnDur, cfg.pushes, cfg.reloads = 30*time.Second, 10, 3
		cfg.renderSizes, cfg.liveSizes = []int{100, 300, 1000, 3000, 10000}, []int{1000, 10000}
	}
	if *propOnly > 0 {
		if err := propagationOnly(cfg, *propOnly, *propChanges); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if cfg.from != "" {
		if err := reportFrom(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// results gathers everything the report needs.
type results struct {
	Machine      machine
	LoadStart    string
	LoadEnd      string
	Render       []renderPoint
	Profile      string
	LoadProfile  string // files.Load of the large fleet
	Small, Large throughput
	PropSmall    propagation
	PropLarge    propagation
	Churn        churn
	Push         pushCost
	Live         []scaleLive
	BackendPort  int
	Commands     []string
	Elapsed      time.Duration
	// Ended is when the measurements ended (zero in results written
	// before it was recorded).
	Ended    time.Time
	Settings settings
	// LuaPhases are the Lua phase directives of tidegate's nginx.conf that
	// run for proxied requests (from the conf used in benchmark 1).
	LuaPhases []string
}

// settings are the run parameters the report quotes.
type settings struct {
	Quick             bool
	ProxyCPU, LoadCPU string
	WrkConns, Pairs   int
	WrkDur, WarmDur   time.Duration
	Reloads           int
}

func run(cfg *config) error {
	res := &results{Machine: describeMachine(), LoadStart: loadavg(), Settings: settings{
		Quick: cfg.quick, ProxyCPU: cfg.proxyCPU, LoadCPU: cfg.loadCPU, WrkConns: cfg.wrkConns,
		Pairs: cfg.pairs, WrkDur: cfg.wrkDur, WarmDur: cfg.warmDur, Reloads: cfg.reloads}}
	logf("machine: %s; load %s", res.Machine.CPU, res.LoadStart)
	if _, err := os.Stat(cfg.bin); err != nil {
		logf("building %s", cfg.bin)
		if out, err := exec.Command("go", "build", "-o", cfg.bin, "./cmd/tidegate").CombinedOutput(); err != nil {
			return fmt.Errorf("build tidegate: %v: %s", err, out)
		}
	}
	root, cleanup, err := setUp(cfg)
	if err != nil {
		return err
	}
	defer cleanup()

	// The backend.
	res.BackendPort = freePort()
	backend, err := startNginx("backend", filepath.Join(root, "backend"), backendConf(filepath.Join(root, "backend"), res.BackendPort), cfg.loadCPU)
	if err != nil {
		return err
	}
	defer backend.stop(syscall.SIGQUIT, 10*time.Second)
	if err := waitBackend(res.BackendPort); err != nil {
		return err
	}

	// 4a. in-process render scale.
	logf("structural scale, in-process: model.Build + nginx.Render")
	if res.Render, err = runRender(cfg.renderSizes, map[bool]int{true: 3, false: 5}[cfg.quick]); err != nil {
		return err
	}
	biggest := cfg.renderSizes[len(cfg.renderSizes)-1]
	if res.Profile, err = profileRender(root, biggest, map[bool]time.Duration{true: 3 * time.Second, false: 6 * time.Second}[cfg.quick]); err != nil {
		logf("  profile: %v", err)
	}

	// 1 route: throughput, propagation, churn.
	if err := smallPhase(cfg, root, res); err != nil {
		return err
	}
	// 1,000 Ingresses: throughput, propagation, push, reloads, RSS.
	if err := largePhase(cfg, root, res); err != nil {
		return err
	}
	// 10,000 Ingresses: reloads, RSS.
	for _, n := range cfg.liveSizes[1:] {
		if err := livePhase(cfg, root, res, n); err != nil {
			return err
		}
	}
	res.LoadEnd = loadavg()
	res.Elapsed = time.Since(t0)
	res.Ended = time.Now().UTC()
	if cfg.resultsOut != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfg.resultsOut, b, 0o644); err != nil {
			return err
		}
	}
	logf("writing %s and plots in %s", cfg.out, cfg.plots)
	return writeReport(cfg, res)
}

// reportFrom rewrites the report from saved results (to revise the text
// without measuring again; the figures stay those of the saved run).
func reportFrom(cfg *config) error {
	b, err := os.ReadFile(cfg.from)
	if err != nil {
		return err
	}
	res := &results{}
	if err := json.Unmarshal(b, res); err != nil {
		return err
	}
	st := res.Settings
	cfg.quick, cfg.proxyCPU, cfg.loadCPU, cfg.wrkConns = st.Quick, st.ProxyCPU, st.LoadCPU, st.WrkConns
	cfg.pairs, cfg.wrkDur, cfg.warmDur, cfg.reloads = st.Pairs, st.WrkDur, st.WarmDur, st.Reloads
	return writeReport(cfg, res)
}

func waitBackend(port int) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c := &fasthttp.HostClient{Addr: fmt.Sprintf("%s:%d", liveAddrs[0], port)}
		if st, _, err := get(c, "backend"); err == nil && st == 200 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("backend nginx does not answer on %s:%d", liveAddrs[0], port)
}

// nginxSet is the plain nginx instances a phase measures tidegate
// against; stop stops them all (again: nothing).
type nginxSet struct{ procs []*proc }

// start runs conf (which listens on port) from the prefix dir.
func (s *nginxSet) start(cfg *config, name, dir string, port int, conf string) (proxyUnderTest, error) {
	p, err := startNginx(name, dir, conf, cfg.proxyCPU)
	if err != nil {
		return proxyUnderTest{}, err
	}
	s.procs = append(s.procs, p)
	return proxyUnderTest{port: port, workers: func() []int { return nginxWorkers(filepath.Join(dir, "nginx.pid")) }}, nil
}

func (s *nginxSet) stop() {
	for _, p := range s.procs {
		p.stop(syscall.SIGQUIT, 10*time.Second)
	}
	s.procs = nil
}

// references are the nginx instances tidegate is compared with.
type references struct {
	static, floor proxyUnderTest
	// twin is a second copy of the static conf, for the side-by-side
	// measurement's check of itself (sidebyside.go).
	twin proxyUnderTest
}

func (r references) ports() []int { return []int{r.static.port, r.floor.port, r.twin.port} }

// startReferences starts the static conf, its twin and the bare
// balancer_by_lua floor for n Ingresses.
func (s *nginxSet) startReferences(cfg *config, dir string, n, backendPort int) (refs references, err error) {
	for _, v := range []struct {
		name string
		conf func(dir string, listen, n, backendPort int) string
		dst  *proxyUnderTest
	}{{"static", staticConf, &refs.static}, {"floor", floorConf, &refs.floor}, {"static-twin", staticConf, &refs.twin}} {
		d, port := filepath.Join(dir, v.name), freePort()
		if *v.dst, err = s.start(cfg, v.name, d, port, v.conf(d, port, n, backendPort)); err != nil {
			return refs, err
		}
	}
	return refs, nil
}

// startAblation starts one nginx per ablation step from tidegate's
// rendered conf and waits until each serves the route.
func (s *nginxSet) startAblation(cfg *config, tg *tidegate, dir string, backendPort int) ([]ablationProxy, error) {
	conf, err := os.ReadFile(filepath.Join(tg.Work, "nginx.conf"))
	if err != nil {
		return nil, err
	}
	steps := ablationSteps(backendPort)
	confs, err := ablationConfs(string(conf), tg.Work, dir, tg.HTTP, tg.HTTPS, steps)
	if err != nil {
		return nil, err
	}
	out := make([]ablationProxy, len(confs))
	for i, c := range confs {
		name := fmt.Sprintf("ablation step %d (%s)", i+1, steps[i].Name)
		if out[i].proxyUnderTest, err = s.start(cfg, name, c.dir, c.port, c.conf); err != nil {
			return nil, err
		}
		out[i].step = steps[i]
		if err := waitServes(c.port, benchHost, fixedBody[:8], 30*time.Second); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return out, nil
}

func smallPhase(cfg *config, root string, res *results) error {
	dir := filepath.Join(root, "small")
	logf("1 route: starting tidegate local and the static nginx")
	if err := writeFleet(filepath.Join(dir, "manifests"), 1, res.BackendPort, liveAddrs); err != nil {
		return err
	}
	tg, err := startTidegate(cfg.bin, dir, filepath.Join(dir, "manifests"), cfg.proxyCPU)
	if err != nil {
		return err
	}
	defer tg.Stop()
	var refs nginxSet
	defer refs.stop()
	ref, err := refs.startReferences(cfg, dir, 1, res.BackendPort)
	if err != nil {
		return err
	}
	for _, port := range append(ref.ports(), tg.HTTP) {
		if err := waitServes(port, benchHost, fixedBody[:8], 30*time.Second); err != nil {
			return err
		}
	}
	res.Commands = append(res.Commands, strings.Join(tg.cmd.Args, " "))
	for _, p := range refs.procs {
		res.Commands = append(res.Commands, strings.Join(p.cmd.Args, " "))
	}
	if conf, err := os.ReadFile(filepath.Join(tg.Work, "nginx.conf")); err == nil {
		res.LuaPhases = luaPhases(conf)
	}
	logf("1. throughput, 1 route")
	tgp := proxyUnderTest{port: tg.HTTP, workers: func() []int { return workersOf(tg) }}
	ablation, err := refs.startAblation(cfg, tg, filepath.Join(dir, "ablation"), res.BackendPort)
	if err != nil {
		return err
	}
	// The same tidegate with --enable-metrics=false, side by side only; it
	// watches the same manifests, so it stops before benchmarks 2 and 3
	// write to them.
	noMetrics, err := startTidegate(cfg.bin, filepath.Join(dir, "no-metrics"), filepath.Join(dir, "manifests"), cfg.proxyCPU, "--enable-metrics=false")
	if err != nil {
		return fmt.Errorf("tidegate --enable-metrics=false: %w", err)
	}
	defer noMetrics.Stop()
	if err := waitServes(noMetrics.HTTP, benchHost, fixedBody[:8], 30*time.Second); err != nil {
		return err
	}
	nm := namedProxy{sideNoMetrics, proxyUnderTest{port: noMetrics.HTTP, workers: func() []int { return workersOf(noMetrics) }}}
	if res.Small, err = runThroughput(cfg, 1, endpointsPer, tgp, ref, ablation, nm); err != nil {
		return err
	}
	refs.stop()
	noMetrics.Stop()
	logf("2. propagation, 1 route: %d changes", cfg.changes)
	if res.PropSmall, err = runPropagation(tg, 1, cfg.changes, res.BackendPort); err != nil {
		return err
	}
	logf("   p50 %s p99 %s", pct(res.PropSmall.Samples, 50), pct(res.PropSmall.Samples, 99))
	maxRPS, _, _ := res.Small.medians(res.Small.Tidegate)
	logf("3. churn under load")
	if res.Churn, err = runChurn(cfg, root, tg, maxRPS, res.BackendPort); err != nil {
		return err
	}
	logf("   quiet %.0f req/s, churn %.0f req/s (median chunk ratio %.3f), reloads %.0f, non-2xx %d, controller CPU %.0f%%", res.Churn.Base.RPS, res.Churn.Churn.RPS, res.Churn.Ratio(), res.Churn.Reloads, res.Churn.Churn.Non2xx, 100*res.Churn.CtlCPUChurn)
	return nil
}

// setUp pins this program (load generator, pollers) beside wrk and the
// backend, away from the proxy, and makes the run's working directory;
// cleanup removes it unless -keep.
func setUp(cfg *config) (root string, cleanup func(), err error) {
	if cfg.loadCPU != "" && haveTaskset {
		_ = exec.Command("taskset", "-a", "-p", "-c", cfg.loadCPU, strconv.Itoa(os.Getpid())).Run()
	}
	root, err = os.MkdirTemp("", "tidegate-bench-")
	if err != nil {
		return "", nil, err
	}
	// nginx's workers (nobody, when this runs as root) enter the working
	// directories below.
	if err := os.Chmod(root, 0o711); err != nil {
		return "", nil, err
	}
	cfg.tmp = root
	if cfg.keep {
		logf("working directory %s (kept)", root)
		return root, func() {}, nil
	}
	return root, func() { os.RemoveAll(root) }, nil
}

// propagationOnly runs benchmark 2 alone at n Ingresses, with the same
// setup as the full run, and prints its figures: to compare two builds of
// tidegate side by side (-bin) without the ~7 minutes of the full run.
func propagationOnly(cfg *config, n, changes int) error {
	if _, err := os.Stat(cfg.bin); err != nil {
		return fmt.Errorf("-propagation needs a built tidegate: %w", err)
	}
	root, cleanup, err := setUp(cfg)
	if err != nil {
		return err
	}
	defer cleanup()
	port := freePort()
	backend, err := startNginx("backend", filepath.Join(root, "backend"), backendConf(filepath.Join(root, "backend"), port), cfg.loadCPU)
	if err != nil {
		return err
	}
	defer backend.stop(syscall.SIGQUIT, 10*time.Second)
	if err := waitBackend(port); err != nil {
		return err
	}
	dir := filepath.Join(root, fmt.Sprintf("n%d", n))
	if err := writeFleet(filepath.Join(dir, "manifests"), n, port, liveAddrs); err != nil {
		return err
	}
	tg, err := startTidegate(cfg.bin, dir, filepath.Join(dir, "manifests"), cfg.proxyCPU)
	if err != nil {
		return err
	}
	defer tg.Stop()
	if err := waitServes(tg.HTTP, benchHost, fixedBody[:8], 60*time.Second); err != nil {
		return err
	}
	logf("2. propagation, %d Ingresses: %d changes (%s)", n, changes, cfg.bin)
	p, err := runPropagation(tg, n, changes, port)
	if err != nil {
		return err
	}
	s := p.Samples
	fmt.Printf("propagation n=%d changes=%d bin=%s: p50 %s p90 %s p99 %s max %s failures %d\n", n, len(s), cfg.bin,
		pct(s, 50).Round(100*time.Microsecond), pct(s, 90).Round(100*time.Microsecond),
		pct(s, 99).Round(100*time.Microsecond), pct(s, 100).Round(100*time.Microsecond), p.Failures)
	return nil
}

func largePhase(cfg *config, root string, res *results) error {
	n := cfg.liveSizes[0]
	dir := filepath.Join(root, fmt.Sprintf("n%d", n))
	logf("%d Ingresses: writing manifests, starting tidegate local and the static nginx", n)
	if err := writeFleet(filepath.Join(dir, "manifests"), n, res.BackendPort, liveAddrs); err != nil {
		return err
	}
	sl := scaleLive{Ingresses: n, Endpoints: n * endpointsPer}
	tg, err := startTidegate(cfg.bin, dir, filepath.Join(dir, "manifests"), cfg.proxyCPU)
	if err != nil {
		return err
	}
	defer tg.Stop()
	sl.PeakRSSStart = tg.PeakRSS
	sl.Startup = tg.healthyAt.Sub(tg.startedAt)
	sl.RSSStart, _ = tg.RSS()
	var refs nginxSet
	defer refs.stop()
	ref, err := refs.startReferences(cfg, dir, n, res.BackendPort)
	if err != nil {
		return err
	}
	for _, port := range append(ref.ports(), tg.HTTP) {
		if err := waitServes(port, benchHost, fixedBody[:8], 60*time.Second); err != nil {
			return err
		}
	}
	logf("1. throughput, %d Ingresses / %d endpoints", n, n*endpointsPer)
	tgp := proxyUnderTest{port: tg.HTTP, workers: func() []int { return workersOf(tg) }}
	if res.Large, err = runThroughput(cfg, n, n*endpointsPer, tgp, ref, nil); err != nil {
		return err
	}
	refs.stop()
	if res.LoadProfile, err = profileFunc(cfg.tmp, "files-load", map[bool]time.Duration{true: 2 * time.Second, false: 4 * time.Second}[cfg.quick], func() error {
		files.Load(filepath.Join(dir, "manifests"))
		return nil
	}); err != nil {
		logf("  profile files.Load: %v", err)
	}
	logf("2. propagation, %d Ingresses: %d changes", n, cfg.changesLarge)
	if res.PropLarge, err = runPropagation(tg, n, cfg.changesLarge, res.BackendPort); err != nil {
		return err
	}
	logf("   p50 %s p99 %s", pct(res.PropLarge.Samples, 50), pct(res.PropLarge.Samples, 99))
	logf("5. push cost: %d full pushes", cfg.pushes)
	if res.Push, err = runPush(cfg, tg); err != nil {
		return err
	}
	logf("   push p50 %s; request max %s quiet, %s during pushes", medianDur(res.Push.Push), res.Push.Base.Max, res.Push.During.Max)
	logf("4. reloads with %d Ingresses", n)
	if err := runReloads(tg, &sl, cfg.reloads); err != nil {
		return err
	}
	tg.Stop()
	if err := aloneAB(cfg, tg, &sl, true); err != nil {
		return err
	}
	res.Live = append(res.Live, sl)
	return nil
}

// perHostVariant names the nginx-alone runs of perHostConf.
const perHostVariant = "one block per host"

// aloneAB measures nginx alone on tidegate's last conf: as rendered (when
// asRendered) and rendered with one server block per host.
func aloneAB(cfg *config, tg *tidegate, sl *scaleLive, asRendered bool) error {
	conf, err := os.ReadFile(filepath.Join(tg.Work, "nginx.conf"))
	if err != nil {
		return err
	}
	perHost, err := perHostConf(tg)
	if err != nil {
		return err
	}
	variants := []struct {
		name string
		conf []byte
	}{{"as rendered", conf}, {perHostVariant, perHost}}
	if !asRendered {
		variants = variants[1:]
	}
	for _, v := range variants {
		a, err := measureNginxAlone(v.name, tg.Work, v.conf, cfg.proxyCPU)
		if err != nil {
			return fmt.Errorf("nginx alone (%s): %w", v.name, err)
		}
		logf("   nginx alone, %s: start %s, SIGHUP to new worker %s, RSS master %s worker %s", v.name,
			a.Start.Round(time.Millisecond), a.Reload.Round(time.Millisecond), mib(a.RSSMaster), mib(a.RSSWorker))
		sl.Alone = append(sl.Alone, a)
	}
	return nil
}

func livePhase(cfg *config, root string, res *results, n int) error {
	dir := filepath.Join(root, fmt.Sprintf("n%d", n))
	logf("4. %d Ingresses: writing manifests, starting tidegate local", n)
	if err := writeFleet(filepath.Join(dir, "manifests"), n, res.BackendPort, liveAddrs); err != nil {
		return err
	}
	sl := scaleLive{Ingresses: n, Endpoints: n * endpointsPer}
	tg, err := startTidegate(cfg.bin, dir, filepath.Join(dir, "manifests"), cfg.proxyCPU)
	if tg == nil {
		return err
	}
	defer tg.Stop()
	sl.PeakRSSStart = tg.PeakRSS
	if err != nil {
		// Measured and reported, not fatal: the conf it rendered is in
		// its working directory.
		sl.StartError = err.Error()
		sl.Startup = time.Since(tg.startedAt)
		logf("   tidegate local did not start: %v", err)
		if err := checkTimes(tg, &sl, 1); err != nil {
			return err
		}
		if err := aloneAB(cfg, tg, &sl, false); err != nil {
			return err
		}
		res.Live = append(res.Live, sl)
		return nil
	}
	sl.Startup = tg.healthyAt.Sub(tg.startedAt)
	sl.RSSStart, _ = tg.RSS()
	if err := waitServes(tg.HTTP, benchHost, fixedBody[:8], 60*time.Second); err != nil {
		return err
	}
	logf("   healthy after %s", sl.Startup.Round(time.Millisecond))
	if err := runReloads(tg, &sl, cfg.reloads); err != nil {
		return err
	}
	tg.Stop()
	if err := aloneAB(cfg, tg, &sl, true); err != nil {
		return err
	}
	res.Live = append(res.Live, sl)
	return nil
}

func workersOf(tg *tidegate) []int {
	if p := tg.NginxPIDs(); len(p) > 1 {
		return p[1:]
	}
	return nil
}

// luaPhases lists the request-phase Lua directives in a rendered conf
// (content handlers of the control socket and init phases excluded).
func luaPhases(conf []byte) []string {
	var out []string
	for _, d := range []string{"rewrite_by_lua", "access_by_lua", "balancer_by_lua", "header_filter_by_lua", "body_filter_by_lua", "log_by_lua"} {
		if strings.Contains(string(conf), d) {
			out = append(out, d)
		}
	}
	return out
}
