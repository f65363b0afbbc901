package dynamic

import (
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/dynamic/dynamictest"
)

// TestPushAfterReload: a reload makes the old workers close the control
// connections the client keeps alive; the next push goes through on a new
// one (it used to fail with "write: broken pipe", and the endpoints it
// carried waited for the next change in the cluster).
func TestPushAfterReload(t *testing.T) {
	ng, c := start(t)
	a, b := dynamictest.StartBackend(t, "a"), dynamictest.StartBackend(t, "b")
	push(t, c, backend(kibana, ep{b: a}))
	reload(t, ng)
	if err := c.PushBackends(ctx(t), true, nil, nil); err != nil {
		t.Fatalf("first push after the reload: %v", err)
	}
	push(t, c, backend(kibana, ep{b: b}))
	if got := count(t, ng, "/kibana", 10); got["b"] != 10 {
		t.Fatalf("after the reload and push: %v, want all on b", got)
	}
}

// reload sends nginx SIGHUP and waits until only new workers are left.
func reload(t *testing.T, ng *dynamictest.Nginx) {
	t.Helper()
	old := ng.WorkerPIDs()
	if err := syscall.Kill(ng.MasterPID(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		now := ng.WorkerPIDs()
		gone := true
		for _, p := range old {
			gone = gone && !slices.Contains(now, p)
		}
		if gone && len(now) == dynamictest.Workers {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("old workers %v still there after the reload: %v", old, now)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
