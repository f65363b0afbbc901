package dynamic

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidegate/tidegate/pkg/dynamic/dynamictest"
	"github.com/tidegate/tidegate/pkg/model"
)

// clockVersions is the largest version nginx takes whatever it holds
// (lua/tidegate/push_store.lua, CLOCK_VERSIONS).
const clockVersions = int64(1) << 50

// TestAbsurdVersionsRefused: a push whose version no clock gives (2^53,
// 1e300, above 2^50, negative, fractional, not a number) is refused with
// 400 and a reason and changes nothing, and the client's pushes afterwards
// land. A push at 2^53 used to be stored, and then no version was newer:
// every later push failed until nginx restarted.
func TestAbsurdVersionsRefused(t *testing.T) {
	ng, c := start(t)
	a := dynamictest.StartBackend(t, "a")
	b := dynamictest.StartBackend(t, "b")
	push(t, c, backend(kibana, ep{b: a}))
	stored, _ := ng.Workers(t)
	bodies := map[string]string{ // each would leave kibana without endpoints
		BackendsPath:     `{"version":%s,"full":true,"backends":[],"removed":[]}`,
		CertificatesPath: `{"version":%s,"full":true,"certificates":[],"removed":[]}`,
	}
	for _, v := range []string{
		"9007199254740992", "9007199254740993", "9007199254740991", "18014398509481984", "1e300", "1e16",
		fmt.Sprint(clockVersions + 1), fmt.Sprint(clockVersions * 4), "-1", "0", "-0", "1.5", fmt.Sprint(stored) + ".5",
		"NaN", "Infinity", "-Infinity", `"NaN"`, `"1"`, "null", "true", "0x10", "[1]",
	} {
		for path, body := range bodies {
			status, ans := ng.Control(t, "POST", path, fmt.Appendf(nil, body, v))
			var res struct{ Error string }
			if err := json.Unmarshal([]byte(ans), &res); status != 400 || err != nil || res.Error == "" {
				t.Errorf("%s at version %s: got %d %q, want 400 with a reason", path, v, status, ans)
			}
		}
	}
	status, ans := ng.ControlType(t, "POST", BackendsPath, contentLines,
		[]byte(`{"version":9007199254740992,"full":true,"removed":[]}`+"\n"))
	if status != 400 || !strings.Contains(ans, "version: must be an integer from 1 to 2^53 - 1") {
		t.Errorf("line format at 2^53: got %d %q, want 400", status, ans)
	}
	if v, _ := ng.Workers(t); v != stored {
		t.Errorf("stored version %d after refused pushes, want %d", v, stored)
	}
	if status, body := ng.Get(t, "/kibana"); status != 200 || body != "a" {
		t.Errorf("after refused pushes: got %d %q, want 200 a", status, body)
	}
	for range 3 {
		push(t, c, backend(kibana, ep{b: b}))
	}
	if status, body := ng.Get(t, "/kibana"); status != 200 || body != "b" {
		t.Errorf("after the client's pushes: got %d %q, want 200 b", status, body)
	}
}

// TestClientMovesPastAnyStoredVersion: whatever version nginx holds, the
// client's next push lands. A stray push stored 2^50, the largest version
// nginx takes freely; above it nginx takes only the stored version + 1,
// and a client is told the stored version and pushes again from it: one
// whose clock is behind (409), and one whose counter ran further ahead
// (pushes that never reached nginx: 400).
func TestClientMovesPastAnyStoredVersion(t *testing.T) {
	ng, c := start(t)
	a := dynamictest.StartBackend(t, "a")
	b := dynamictest.StartBackend(t, "b")
	push(t, c, backend(kibana, ep{b: a}))
	stray := func(v int64) (int, string) {
		return ng.Control(t, "POST", BackendsPath, fmt.Appendf(nil, `{"version":%d,"full":true,"backends":[],"removed":[]}`, v))
	}
	if status, ans := stray(clockVersions); status != 200 {
		t.Fatalf("push at 2^50: got %d %q, want 200", status, ans)
	}
	status, ans := stray(clockVersions + 2)
	if want := fmt.Sprintf(`"version":%d`, clockVersions); status != 400 || !strings.Contains(ans, "above 2^50") || !strings.Contains(ans, want) {
		t.Errorf("push at 2^50 + 2: got %d %q, want 400 naming the stored version", status, ans)
	}

	pushAt := func(c *Client, to *dynamictest.Backend, want int64) {
		t.Helper()
		res, err := c.PushBackendsResult(ctx(t), true, []model.Backend{backend(kibana, ep{b: to})}, nil)
		if err != nil || res.Version != want {
			t.Fatalf("got %+v %v, want version %d", res, err, want)
		}
		if status, body := ng.Get(t, "/kibana"); status != 200 || body != to.Name {
			t.Errorf("got %d %q, want 200 %s", status, body, to.Name)
		}
	}
	pushAt(c, b, clockVersions+1) // refused as older (409), then stored + 1
	ahead := New(ng.Socket, ng.Token)
	ahead.version = clockVersions + 1000
	pushAt(ahead, a, clockVersions+2) // refused as too far (400), then stored + 1
	pushAt(ahead, b, clockVersions+3)
	pushAt(c, a, clockVersions+4)
}
