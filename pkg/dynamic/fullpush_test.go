package dynamic

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/dynamic/dynamictest"
	"github.com/tidegate/tidegate/pkg/model"
)

// fleet returns n backends of per endpoints each on 10.0.0.0/8 (never
// connected to), all with the given weight.
func fleet(n, per, weight int) []model.Backend {
	bs := make([]model.Backend, 0, n)
	for i := range n {
		b := model.Backend{Name: fmt.Sprintf("ns%d/svc:80", i), Algorithm: model.DefaultAlgorithm}
		for k := range per {
			j := i*per + k
			b.Endpoints = append(b.Endpoints, model.Endpoint{
				Address: fmt.Sprintf("10.%d.%d.%d", j>>16&255, j>>8&255, j&255), Port: 8080, Weight: weight})
		}
		bs = append(bs, b)
	}
	return bs
}

// caughtUp waits until every worker applied the stored version and returns
// what they report.
func caughtUp(t *testing.T, ng *dynamictest.Nginx) []dynamictest.WorkerState {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, ws := ng.Workers(t)
		done := len(ws) == dynamictest.Workers
		for _, w := range ws {
			done = done && w.Version == v
		}
		if done {
			return ws
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers did not apply version %d: %+v", v, ws)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFullPushOfTenThousandEndpointsKeepsServing pushes 1,000 backends of
// 10 endpoints each in full, all changed and then unchanged, while clients
// send requests to another backend: every request is answered, a worker
// builds only the backends requests used (not the 1,000 others), a push that
// changes nothing rebuilds nothing, and a push that changes one backend
// rebuilds that one only, where it was built.
func TestFullPushOfTenThousandEndpointsKeepsServing(t *testing.T) {
	ng, c := start(t)
	a := dynamictest.StartBackend(t, "a")
	withKibana := func(bs []model.Backend) []model.Backend {
		return append(bs, backend(kibana, ep{b: a}))
	}
	push(t, c, withKibana(fleet(1000, 10, 1))...)

	stop := make(chan struct{})
	collect := latencies(t, ng, "/kibana", 4, stop) // fails the test on any non-200
	changed := withKibana(fleet(1000, 10, 2))
	res, err := c.PushBackendsResult(ctx(t), true, changed, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed != 1000 {
		t.Errorf("full push with every weight changed: %d changed, want 1000", res.Changed)
	}
	before := caughtUp(t, ng)
	res, err = c.PushBackendsResult(ctx(t), true, changed, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed != 0 {
		t.Errorf("the same full push again: %d changed, want 0", res.Changed)
	}
	after := caughtUp(t, ng)
	close(stop)
	for _, w := range after {
		// kibana, built on first use and rebuilt after the weight change
		if w.Rebuilds > 2 {
			t.Errorf("worker %d built %d backends; requests used one", w.ID, w.Rebuilds)
		}
	}
	if n := len(collect()); n == 0 {
		t.Error("no request was answered during the pushes")
	}
	for i := range after {
		if after[i].Rebuilds != before[i].Rebuilds {
			t.Errorf("worker %d rebuilt %d backends for a push that changed nothing",
				after[i].ID, after[i].Rebuilds-before[i].Rebuilds)
		}
	}

	changed[7].Endpoints[0].Weight = 5 // a backend no request used
	res, err = c.PushBackendsResult(ctx(t), true, changed, nil)
	if err != nil || res.Changed != 1 {
		t.Fatalf("full push with one backend changed: %+v %v, want 1 changed", res, err)
	}
	unused := caughtUp(t, ng)
	for i := range unused {
		if d := unused[i].Rebuilds - after[i].Rebuilds; d != 0 {
			t.Errorf("worker %d rebuilt %d backends for a push that changed one it never built", unused[i].ID, d)
		}
	}
	changed[len(changed)-1].Endpoints[0].Weight = 3 // kibana, which requests used
	res, err = c.PushBackendsResult(ctx(t), true, changed, nil)
	if err != nil || res.Changed != 1 {
		t.Fatalf("full push with kibana changed: %+v %v, want 1 changed", res, err)
	}
	one := caughtUp(t, ng)
	total := 0
	for i := range one {
		d := one[i].Rebuilds - unused[i].Rebuilds
		if d > 1 {
			t.Errorf("worker %d rebuilt %d backends for a push that changed one", one[i].ID, d)
		}
		total += d
	}
	if total == 0 {
		t.Errorf("no worker rebuilt kibana, which requests used, after its change")
	}
	if got := count(t, ng, "/kibana", 10); got["a"] != 10 {
		t.Errorf("after the pushes: %v, want all on a", got)
	}
}

// TestLinePushIsCheckedLikeADocument sends pushes in the line format by
// hand: a bad line anywhere rejects the whole push with its index, and a
// line nginx has seen before is recognised only while the backend it
// stored from it is unchanged.
func TestLinePushIsCheckedLikeADocument(t *testing.T) {
	ng, c := start(t)
	a, b := dynamictest.StartBackend(t, "a"), dynamictest.StartBackend(t, "b")
	push(t, c, backend(kibana, ep{b: a}))
	v, _ := ng.Workers(t)
	line := func(bk model.Backend) string {
		j, err := json.Marshal(bk)
		if err != nil {
			t.Fatal(err)
		}
		return string(j)
	}
	post := func(body string) (int, string) {
		return ng.ControlType(t, "POST", BackendsPath, "application/x-ndjson", []byte(body))
	}

	bad := map[string]struct{ body, want string }{
		"bad header":                {`{"version":` + "\n" + line(backend(kibana, ep{b: b})), "first line: invalid JSON"},
		"backends in it":            {fmt.Sprintf(`{"version":%d,"backends":[]}`, v+1), `unknown key \"backends\"`},
		"second line names nothing": {fmt.Sprintf(`{"version":%d}`, v+1) + "\n" + line(backend(kibana, ep{b: b})) + "\n" + `{"endpoints":[{"address":"10.0.0.1","port":0}]}`, `backends[1].name`},
		"blank line":                {fmt.Sprintf(`{"version":%d}`, v+1) + "\n\n" + line(backend(kibana, ep{b: b})), "backends[0] (line 2): invalid JSON"},
		"listed twice":              {fmt.Sprintf(`{"version":%d}`, v+1) + "\n" + line(backend(kibana, ep{b: a})) + "\n" + line(backend(kibana, ep{b: a})), "listed twice"},
		"pushed, removed":           {fmt.Sprintf(`{"version":%d,"removed":[%q]}`, v+1, kibana) + "\n" + line(backend(kibana, ep{b: a})), "both pushed and removed"},
	}
	for name, tc := range bad {
		st, body := post(tc.body)
		if st != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want 400 with %q", name, st, body, tc.want)
		}
	}
	if got := count(t, ng, "/kibana", 10); got["a"] != 10 {
		t.Fatalf("after rejected pushes: %v, want all still on a", got)
	}

	// The same backend through a JSON document: the line it was pushed as
	// before no longer stands for what is stored.
	doc := fmt.Sprintf(`{"version":%d,"full":true,"backends":[%s]}`, v+1, line(backend(kibana, ep{b: b})))
	if st, body := ng.Control(t, "POST", BackendsPath, []byte(doc)); st != 200 {
		t.Fatalf("JSON document push: %d %s", st, body)
	}
	if got := count(t, ng, "/kibana", 10); got["b"] != 10 {
		t.Fatalf("after the document push: %v, want all on b", got)
	}
	res, err := c.PushBackendsResult(ctx(t), true, []model.Backend{backend(kibana, ep{b: a})}, nil)
	if err != nil || res.Changed != 1 {
		t.Fatalf("line push back to a: %+v %v, want 1 changed", res, err)
	}
	if got := count(t, ng, "/kibana", 10); got["a"] != 10 {
		t.Fatalf("after the line push: %v, want all on a", got)
	}

	// A backend that fails its checks is left out and named; the rest of
	// the push is applied, and a stored backend that fails keeps its
	// stored version.
	push(t, c, backend(kibana, ep{b: a}), backend("default/other:80", ep{b: a}))
	v, _ = ng.Workers(t)
	st, answer := post(fmt.Sprintf(`{"version":%d,"full":true}`, v+1) + "\n" + line(backend(kibana, ep{b: b})) + "\n" +
		`{"name":"x","endpoints":[{"address":"10.0.0.1","port":0}]}` + "\n" +
		`{"name":"default/other:80","endpoints":[{"address":"nope","port":1}]}`)
	if st != 200 || !strings.Contains(answer, `"x":"backend \"x\" endpoints[0].port`) || !strings.Contains(answer, `"default\/other:80":`) {
		t.Fatalf("a push with two bad backends: %d %s, want 200 naming x and default/other:80", st, answer)
	}
	if got := count(t, ng, "/kibana", 10); got["b"] != 10 {
		t.Errorf("the good backend of that push: %v, want all on b", got)
	}
	if got := count(t, ng, "/other", 10); got["a"] != 10 {
		t.Errorf("a stored backend whose update was refused: %v, want all still on a", got)
	}
}

// FuzzLinePush posts random bodies in the line format to a real nginx, as
// test/hostile's FuzzLuaSchema does with JSON documents: the answer is 200,
// 400 or 409, a 400 carries a reason, and nginx keeps serving.
//
//	go test ./pkg/dynamic -run XXX -fuzz FuzzLinePush -fuzztime 30s
func FuzzLinePush(f *testing.F) {
	f.Add("{\"version\":1,\"full\":true}\n{\"name\":\"default/kibana:5601\",\"endpoints\":[{\"address\":\"127.0.0.1\",\"port\":1}]}\n")
	f.Add("{\"version\":2,\"removed\":[\"default/kibana:5601\"]}")
	f.Add("{\"version\":3}\n{\"name\":\"a\"}\n{\"name\":\"a\"}")
	f.Add("{\"version\":4,\"full\":true}\n\n{}\n")
	f.Add("\n\n\n")
	f.Add("{\"version\":5}\n[1,2]\n{\"name\":\"b\",\"canaries\":[{\"backend\":\"c\",\"header_pattern\":\"(\"}]}")
	ng := dynamictest.New(f, dynamictest.Locations{"/kibana": kibana})
	ng.Start(f)
	f.Fuzz(func(t *testing.T, body string) {
		status, answer := ng.ControlType(t, "POST", BackendsPath, contentLines, []byte(body))
		dynamictest.CheckControlAnswer(t, body, status, answer)
		if st, _ := ng.Get(t, "/kibana"); st != 200 && st != 502 && st != 503 {
			t.Fatalf("nginx stopped serving after %q: %d", body, st)
		}
	})
}
