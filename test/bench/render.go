package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/nginx"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// ---- 4a. structural scale in-process: snapshot -> model -> nginx.conf ----

type renderPoint struct {
	Ingresses, Endpoints int
	Build, Render        time.Duration // medians of wall time
	// MinTotal is the fastest Build+Render; CPU is the median CPU time
	// (user+system, all threads: GC included) of one Build+Render, which
	// other load on the machine does not inflate.
	MinTotal, CPU time.Duration
	ConfBytes     int
	AllocMB       float64 // per Build+Render
}

func (p renderPoint) Total() time.Duration { return p.Build + p.Render }

// fleetSnapshot is the same fleet writeFleet lays out as files, built in
// memory with pkg/fixture.
func fleetSnapshot(n int) *snapshot.Snapshot {
	objs := []any{fixture.ConfigMap("tidegate/tidegate", "worker-processes=1")}
	add := func(name, host string, addrs []string) {
		objs = append(objs,
			fixture.Ingress("default/"+name).Host(host).Prefix("/", name+":80"),
			fixture.Service("default/"+name, "80"),
			fixture.Slice("default/"+name, name, "8080").Ready(addrs...))
	}
	add("bench", benchHost, liveAddrs)
	for i := 1; i < n; i++ {
		name := fmt.Sprintf("f%05d", i)
		addrs := make([]string, endpointsPer)
		for k := range addrs {
			addrs[k] = fillerAddr(i, k)
		}
		add(name, name+".example.com", addrs)
	}
	return fixture.Snapshot(objs...)
}

var renderSettings = nginx.Settings{WorkDir: "/var/lib/tidegate", HTTPPort: 80, HTTPSPort: 443}

func runRender(sizes []int, reps int) ([]renderPoint, error) {
	var out []renderPoint
	for _, n := range sizes {
		snap := fleetSnapshot(n)
		p := renderPoint{Ingresses: n}
		var bs, rs, cs, ts []time.Duration
		var ms0, ms1 runtime.MemStats
		for i := 0; i < reps; i++ {
			runtime.GC()
			runtime.ReadMemStats(&ms0)
			c0 := cpuTime()
			t0 := time.Now()
			m := model.Build(snap, model.DefaultOptions())
			t1 := time.Now()
			r, err := nginx.Render(m.Structure, renderSettings)
			t2 := time.Now()
			cs = append(cs, cpuTime()-c0)
			ts = append(ts, t2.Sub(t0))
			runtime.ReadMemStats(&ms1)
			if err != nil {
				return nil, err
			}
			if len(m.Problems) > 0 {
				return nil, fmt.Errorf("fleet of %d has problems: %v", n, m.Problems[0])
			}
			bs, rs = append(bs, t1.Sub(t0)), append(rs, t2.Sub(t1))
			p.ConfBytes = len(r.Conf)
			p.AllocMB = float64(ms1.TotalAlloc-ms0.TotalAlloc) / (1 << 20)
			p.Endpoints = 0
			for _, b := range m.Dynamic.Backends {
				p.Endpoints += len(b.Endpoints)
			}
		}
		p.Build, p.Render = medianDur(bs), medianDur(rs)
		p.CPU, p.MinTotal = medianDur(cs), pct(ts, 0)
		logf("  %5d Ingresses: build %s, render %s (fastest %s, CPU %s), nginx.conf %d KiB, %.0f MiB allocated",
			n, p.Build.Round(time.Microsecond*100), p.Render.Round(time.Microsecond*100), p.MinTotal.Round(time.Microsecond*100), p.CPU.Round(time.Microsecond*100), p.ConfBytes>>10, p.AllocMB)
		out = append(out, p)
	}
	return out, nil
}

// profileRender CPU-profiles Build+Render of n Ingresses.
func profileRender(dir string, n int, dur time.Duration) (string, error) {
	snap := fleetSnapshot(n)
	return profileFunc(dir, fmt.Sprintf("render-%d", n), dur, func() error {
		m := model.Build(snap, model.DefaultOptions())
		_, err := nginx.Render(m.Structure, renderSettings)
		return err
	})
}

// profileFunc CPU-profiles f, called in a loop for dur, and returns the top
// functions by flat and by cumulative time, as `go tool pprof -top` prints.
func profileFunc(dir, name string, dur time.Duration, f func() error) (string, error) {
	path := filepath.Join(dir, name+".pprof")
	out, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return "", err
	}
	for t0 := time.Now(); time.Since(t0) < dur; {
		if err := f(); err != nil {
			pprof.StopCPUProfile()
			out.Close()
			return "", err
		}
	}
	pprof.StopCPUProfile()
	out.Close()
	var b strings.Builder
	for _, sort := range []string{"-flat", "-cum"} {
		top, err := exec.Command("go", "tool", "pprof", "-top", sort, "-nodecount=12", path).Output()
		if err != nil {
			return "", fmt.Errorf("go tool pprof: %v", err)
		}
		for _, l := range strings.Split(string(top), "\n") {
			if strings.Contains(l, "flat%") || strings.Contains(l, "%") && strings.Contains(l, "s ") {
				b.WriteString(l + "\n")
			}
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}

// cpuTime is this process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
