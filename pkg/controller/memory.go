package controller

import (
	"math"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
)

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
