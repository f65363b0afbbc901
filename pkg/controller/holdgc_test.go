package controller

import (
	"math"
	"runtime"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
	"testing"
)

var sink [][]byte

// TestHoldGC checks that no collection starts while a sync holds the
// collector (growing by less than the heap goal), that one does past that bound,
// and that the process's own settings come back afterwards.
func TestHoldGC(t *testing.T) {
	// A live heap of 16 MiB, as a controller has (and a goal twice that).
	live := make([][]byte, 256)
	for i := range live {
		live[i] = make([]byte, 64<<10)
	}
	defer runtime.KeepAlive(live)
	runtime.GC()
	cycles := func() uint32 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.NumGC
	}
	s := []runtimemetrics.Sample{{Name: "/gc/heap/goal:bytes"}, {Name: "/memory/classes/total:bytes"}}
	runtimemetrics.Read(s)
	goal, total := int(s[0].Value.Uint64()), int(s[1].Value.Uint64())

	release := holdGC()
	// Garbage worth 3/4 of the goal: on top of what is live (half the
	// goal) it would start a cycle. holdGC lets a cycle already under way
	// finish (turning the collector off would wait for it), and on a
	// loaded machine one may be: a round with a collection is tried again,
	// up to three rounds.
	var held bool
	var n0 uint32
	for round := 0; round < 3 && !held; round++ {
		n0 = cycles()
		for i := 0; i < 3*goal/4/(64<<10); i++ {
			sink = append(sink, make([]byte, 64<<10))
			sink = nil
		}
		held = cycles() == n0
	}
	if !held {
		t.Errorf("a collection in each of 3 rounds while the collector was held")
	}
	for i := 0; i < 2*(total+goal)/(64<<10); i++ { // past the bound
		sink = append(sink, make([]byte, 64<<10))
		sink = nil
	}
	if cycles() == n0 {
		t.Errorf("no collection after allocating twice the bound: the bound does not hold")
	}
	release()

	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("GC percent after release is %d, want the default 100", p)
	}
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Errorf("memory limit after release is %d, want none", l)
	}
}
