package dynamic

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/dynamic/dynamictest"
	"github.com/tidegate/tidegate/pkg/model"
)

// TestPushCost measures full pushes of 1,000 backends / 10,000 endpoints to
// one nginx worker pinned to CPU 0 while two clients send requests to
// another backend back to back, as BENCHMARKS.md §5 does, and prints push
// round trips and request latencies (quiet, during changed pushes, during
// unchanged ones). On a busy machine those wall-clock figures mostly show
// the other processes, so it also prints two that do not: the longest the
// worker's event loop was held, in CPU time (probeLua), and the worker CPU
// one push costs, rebuilds included. It asserts nothing and runs only when
// asked:
//
//	TIDEGATE_PUSHCOST=1 taskset -c 1 go test ./pkg/dynamic -run TestPushCost -v
//
// With TIDEGATE_PUSHCOST_BEFORE=DIR (a copy of an older lua/ directory) it
// first measures that Lua, fed single JSON documents as the older client
// sent them, so both figures come from one run on one machine.
// TIDEGATE_PUSHCOST_STALLS=1 also lists every stall over 2 ms.
func TestPushCost(t *testing.T) {
	if os.Getenv("TIDEGATE_PUSHCOST") == "" {
		t.Skip("measurement: set TIDEGATE_PUSHCOST=1")
	}
	type run struct {
		name, lua string
		doc       bool
	}
	var runs []run
	if dir := os.Getenv("TIDEGATE_PUSHCOST_BEFORE"); dir != "" {
		runs = append(runs, run{"before (" + dir + ", JSON document)", dir, true})
	}
	runs = append(runs, run{"now (lines)", "", false}, run{"now (JSON document)", "", true})
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			pc := measurePush(t, r.lua, r.doc)
			t.Logf("%s\n"+
				"  full push, all 1000 changed: median %v %v\n"+
				"  full push, nothing changed:  median %v %v\n"+
				"  requests quiet:              %s\n"+
				"  requests during changed:     %s\n"+
				"  requests during unchanged:   %s\n"+
				"  event loop held (CPU), max:  quiet %v / during changed %v / during unchanged %v\n"+
				"  worker CPU per push (+rebuilds, no requests, idle timers subtracted): changed %v, unchanged %v",
				r.name, median(pc.changed), rounded(pc.changed), median(pc.unchanged), rounded(pc.unchanged),
				pc.quiet, pc.during, pc.duringSame,
				pc.quietStall.Round(100*time.Microsecond), pc.changedStall.Round(100*time.Microsecond),
				pc.sameStall.Round(100*time.Microsecond), rounded(pc.changedCPU), rounded(pc.sameCPU))
		})
	}
}

type latencySummary struct {
	n             int
	p50, p99, max time.Duration
}

func (l latencySummary) String() string {
	return "p50 " + l.p50.Round(10*time.Microsecond).String() + " / p99 " + l.p99.Round(10*time.Microsecond).String() +
		" / max " + l.max.Round(100*time.Microsecond).String() + " (n " + strconv.Itoa(l.n) + ")"
}

func summarize(ds []time.Duration) latencySummary {
	if len(ds) == 0 {
		return latencySummary{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return latencySummary{n: len(ds), p50: ds[len(ds)/2], p99: ds[len(ds)*99/100], max: ds[len(ds)-1]}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2].Round(100 * time.Microsecond)
}

func rounded(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(100 * time.Microsecond)
	}
	return out
}

type pushCostRun struct {
	changed, unchanged        []time.Duration
	quiet, during, duringSame latencySummary
	// worker CPU per push including the rebuilds that follow, no requests
	changedCPU, sameCPU []time.Duration
	// the longest the worker's event loop was held, in CPU time (probeLua)
	quietStall, changedStall, sameStall time.Duration
}

// measurePush runs one nginx with one worker (with the Lua in luaDir if
// set) and measures it; doc sends single JSON documents instead of lines.
func measurePush(t *testing.T, luaDir string, doc bool) pushCostRun {
	ng := dynamictest.NewWorkers(t, dynamictest.Locations{"/kibana": kibana}, 1)
	if luaDir != "" {
		dst := filepath.Join(ng.Dir, "lua", "tidegate")
		must(t, os.RemoveAll(dst))
		must(t, os.CopyFS(dst, os.DirFS(filepath.Join(luaDir, "tidegate"))))
	}
	addProbe(t, ng)
	ng.Start(t)
	// nginx on CPU 0 (run the test with taskset -c 1), as make bench does
	for _, pid := range append([]int{ng.MasterPID()}, ng.WorkerPIDs()...) {
		if out, err := exec.Command("taskset", "-a", "-cp", "0", strconv.Itoa(pid)).CombinedOutput(); err != nil {
			t.Logf("taskset: %v %s", err, out)
		}
	}
	c := New(ng.Socket, ng.Token)
	a := dynamictest.StartBackend(t, "a")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	send := func(bs []model.Backend) time.Duration {
		t.Helper()
		t0 := time.Now()
		var err error
		if doc {
			_, err = c.push(ctx, BackendsPath, contentJSON, func(v int64) ([]byte, error) {
				return json.Marshal(map[string]any{"version": v, "full": true, "backends": bs, "removed": []string{}})
			})
		} else {
			_, err = c.PushBackendsResult(ctx, true, bs, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		return time.Since(t0)
	}
	withWeight := func(w int) []model.Backend {
		return append(fleet(1000, 10, w), backend(kibana, ep{b: a}))
	}
	send(withWeight(1))

	stop := make(chan struct{})
	collect := latencies(t, ng, "/kibana", 2, stop)
	time.Sleep(time.Second) // the worker builds the backends pushed above
	quietStart := time.Now()
	time.Sleep(2 * time.Second)
	quietEnd := time.Now()
	type window struct{ from, to time.Time }
	var changedW, sameW []window
	var pc pushCostRun
	const pushes = 8
	for r := range pushes {
		t0 := time.Now()
		d := send(withWeight(2 + r%2))
		pc.changed = append(pc.changed, d)
		// the request that finds the new version may rebuild backends
		changedW = append(changedW, window{t0, t0.Add(d + 200*time.Millisecond)})
		time.Sleep(600 * time.Millisecond)
	}
	same := withWeight(2 + (pushes-1)%2)
	for range 4 {
		t0 := time.Now()
		d := send(same)
		pc.unchanged = append(pc.unchanged, d)
		sameW = append(sameW, window{t0, t0.Add(d + 200*time.Millisecond)})
		time.Sleep(300 * time.Millisecond)
	}
	close(stop)
	// CPU the worker spends on a push and on what follows (the rebuilds),
	// with no requests beside: not inflated by other processes.
	worker := ng.WorkerPIDs()[0]
	c0 := cpuTime(t, worker)
	time.Sleep(300 * time.Millisecond)
	idle := cpuTime(t, worker) - c0 // timers: the probe, the sync tick
	for r := range 3 {
		c0 := cpuTime(t, worker)
		send(withWeight(4 + r%2))
		time.Sleep(300 * time.Millisecond)
		pc.changedCPU = append(pc.changedCPU, cpuTime(t, worker)-c0-idle)
	}
	for range 3 {
		c0 := cpuTime(t, worker)
		send(withWeight(4 + 2%2))
		time.Sleep(300 * time.Millisecond)
		pc.sameCPU = append(pc.sameCPU, cpuTime(t, worker)-c0-idle)
	}
	var quiet, during, duringSame []time.Duration
	in := func(ws []window, at time.Time) bool {
		for _, w := range ws {
			if !at.Before(w.from) && at.Before(w.to) {
				return true
			}
		}
		return false
	}
	for _, s := range collect() {
		switch {
		case s.at.Before(quietStart):
		case s.at.Before(quietEnd):
			quiet = append(quiet, s.dur)
		case in(changedW, s.at):
			during = append(during, s.dur)
		case in(sameW, s.at):
			duringSame = append(duringSame, s.dur)
		}
	}
	pc.quiet, pc.during, pc.duringSame = summarize(quiet), summarize(during), summarize(duringSame)
	for _, st := range probeStalls(t, ng) {
		if os.Getenv("TIDEGATE_PUSHCOST_STALLS") != "" {
			var rel time.Duration
			for _, w := range append(append([]window(nil), changedW...), sameW...) {
				if !st.at.Before(w.from) {
					rel = st.at.Sub(w.from)
				}
			}
			t.Logf("stall %v at %v after the last push began", st.cpu, rel)
		}
		switch {
		case st.at.Before(quietStart):
		case st.at.Before(quietEnd):
			pc.quietStall = max(pc.quietStall, st.cpu)
		case in(changedW, st.at):
			pc.changedStall = max(pc.changedStall, st.cpu)
		case in(sameW, st.at):
			pc.sameStall = max(pc.sameStall, st.cpu)
		}
	}
	return pc
}

// probeLua runs in the worker a timer every millisecond that logs how much
// CPU the worker used since the timer's last run when that is over 2 ms: the
// event loop did not come round for at least that much work. Unlike request
// latencies, this does not grow when other processes take the CPU.
const probeLua = `
local _M = {}
function _M.start()
  local last
  ngx.timer.every(0.001, function()
    local c = os.clock()
    if last and c - last > 0.002 then
      ngx.update_time()
      ngx.log(ngx.ERR, string.format("probe stall cpu_ms=%.3f at=%.3f", (c - last) * 1000, ngx.now()))
    end
    last = c
  end)
end
return _M
`

// addProbe installs probeLua in ng's Lua directory and starts it from
// init_worker.
func addProbe(t *testing.T, ng *dynamictest.Nginx) {
	dir := filepath.Join(ng.Dir, "lua", "tidegate")
	must(t, os.WriteFile(filepath.Join(dir, "probe.lua"), []byte(probeLua), 0o644))
	initLua := filepath.Join(dir, "init.lua")
	b, err := os.ReadFile(initLua)
	must(t, err)
	const hook = "function _M.init_worker()\n"
	if !strings.Contains(string(b), hook) {
		t.Fatalf("%s has no %q", initLua, hook)
	}
	b = []byte(strings.Replace(string(b), hook, hook+"  require(\"tidegate.probe\").start()\n", 1))
	must(t, os.WriteFile(initLua, b, 0o644))
}

// cpuTime is the time pid spent on a CPU (/proc/PID/schedstat).
func cpuTime(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/schedstat")
	must(t, err)
	ns, err := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
	must(t, err)
	return time.Duration(ns)
}

type stall struct {
	at  time.Time
	cpu time.Duration
}

// probeStalls reads the stalls probeLua logged.
func probeStalls(t *testing.T, ng *dynamictest.Nginx) []stall {
	var out []stall
	for _, line := range strings.Split(ng.ErrorLog(), "\n") {
		i := strings.Index(line, "probe stall cpu_ms=")
		if i < 0 {
			continue
		}
		var ms, at float64
		if _, err := fmt.Sscanf(line[i:], "probe stall cpu_ms=%g at=%g", &ms, &at); err != nil {
			t.Fatalf("probe line %q: %v", line, err)
		}
		out = append(out, stall{time.UnixMilli(int64(at * 1000)), time.Duration(ms * float64(time.Millisecond))})
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
