package model_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/tidegate/tidegate/pkg/annotations"
	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// fleet is n Ingresses, each with its own host, Service and a slice of 10
// endpoints: the shape of test/bench's structural-scale fleet.
func fleet(n int, annotate ...string) *snapshot.Snapshot {
	objs := []any{fixture.ConfigMap("tidegate/tidegate", "worker-processes=1")}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("f%05d", i)
		addrs := make([]string, 10)
		for k := range addrs {
			addrs[k] = fmt.Sprintf("10.%d.%d.%d", 1+i/250, i%250, 1+k)
		}
		ing := fixture.Ingress("default/"+name).Host(name+".example.com").Prefix("/", name+":80")
		for k := 0; k+1 < len(annotate); k += 2 {
			ing.Annotate(annotate[k], annotate[k+1])
		}
		objs = append(objs, ing,
			fixture.Service("default/"+name, "80"),
			fixture.Slice("default/"+name, name, "8080").Ready(addrs...))
	}
	return fixture.Snapshot(objs...)
}

func benchmarkBuild(b *testing.B, snap *snapshot.Snapshot) {
	opts := model.DefaultOptions()
	loopCPU(b, func() { model.Build(snap, opts) })
}

// loopCPU runs f as the benchmark loop and reports, besides allocations,
// its CPU time per run: CPU time (all threads, the collector included) is
// steadier than wall time on a shared machine.
func loopCPU(b *testing.B, f func()) {
	b.ReportAllocs()
	cpu0 := cpuTime()
	n := 0
	for b.Loop() {
		f()
		n++
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(n), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkBuild1k(b *testing.B)  { benchmarkBuild(b, fleet(1000)) }
func BenchmarkBuild10k(b *testing.B) { benchmarkBuild(b, fleet(10000)) }

// BenchmarkUpdate1k is one endpoint change at 1,000 Ingresses: the slice
// of one Service replaced, the rest of the snapshot the same objects.
func BenchmarkUpdate1k(b *testing.B) {
	prevSnap := fleet(1000)
	opts := model.DefaultOptions()
	prev := model.Build(prevSnap, opts)
	list := append([]*discoveryv1.EndpointSlice(nil), prevSnap.EndpointSlices...)
	list[500] = fixture.Slice("default/"+list[500].Name, list[500].Labels[snapshot.ServiceNameLabel], "8080").Ready("10.200.0.1").EndpointSlice
	next := (&snapshot.Snapshot{Ingresses: prevSnap.Ingresses, Services: prevSnap.Services, EndpointSlices: list, ConfigMaps: prevSnap.ConfigMaps}).Index()
	b.ReportAllocs()
	for b.Loop() {
		model.Update(prev, prevSnap, next, opts)
	}
}

// BenchmarkAddIngress10k is a structural change at 10,000 Ingresses: one
// Ingress (with its Service and slice) added. Update builds everything
// again but reuses the parsed annotations of the Ingresses that stayed;
// compare with BenchmarkBuild10k.
func BenchmarkAddIngress10k(b *testing.B) { benchmarkAddIngress(b, fleet(10000)) }

// annotated are annotations an Ingress commonly has.
var annotated = []string{annotations.Prefix + "proxy-body-size", "8m", annotations.Prefix + "proxy-read-timeout", "120",
	annotations.Prefix + "ssl-redirect", "false", annotations.Prefix + "enable-cors", "true",
	annotations.Prefix + "affinity", "cookie", annotations.Prefix + "session-cookie-name", "route"}

// The same with six common annotations on every Ingress: what reusing
// their parse saves.
func BenchmarkBuild10kAnnotated(b *testing.B) { benchmarkBuild(b, fleet(10000, annotated...)) }

func BenchmarkAddIngress10kAnnotated(b *testing.B) {
	benchmarkAddIngress(b, fleet(10000, annotated...))
}

func benchmarkAddIngress(b *testing.B, prevSnap *snapshot.Snapshot) {
	opts := model.DefaultOptions()
	prev := model.Build(prevSnap, opts)
	next := (&snapshot.Snapshot{
		Ingresses:      append(prevSnap.Ingresses[:len(prevSnap.Ingresses):len(prevSnap.Ingresses)], fixture.Ingress("default/new").Host("new.example.com").Prefix("/", "new:80").Ingress),
		Services:       append(prevSnap.Services[:len(prevSnap.Services):len(prevSnap.Services)], fixture.Service("default/new", "80")),
		EndpointSlices: append(prevSnap.EndpointSlices[:len(prevSnap.EndpointSlices):len(prevSnap.EndpointSlices)], fixture.Slice("default/new", "new", "8080").Ready("10.200.0.1").EndpointSlice),
		ConfigMaps:     prevSnap.ConfigMaps,
	}).Index()
	loopCPU(b, func() { model.Update(prev, prevSnap, next, opts) })
}
