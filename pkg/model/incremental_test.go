package model_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/tidegate/tidegate/pkg/annotations"
	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// world is a set of objects with every way a backend gets its endpoints:
// plain and named ports, a default-backend fallback, a canary, a
// service-upstream, spec.defaultBackend, --default-backend-service (whose
// first port is UDP), a missing and an ExternalName Service, a Service
// without a matching port, and slices that are FQDN, unlabelled, of
// another namespace, or for no Service any Ingress uses.
func world() (fixed []any, services []string, slices []*discoveryv1.EndpointSlice) {
	cip := fixture.Service("default/cip", "80")
	cip.Spec.ClusterIP = "10.96.0.7"
	ext := fixture.Service("default/ext", "80")
	ext.Spec.Type = corev1.ServiceTypeExternalName
	global := fixture.Service("tidegate/global", "53", "8080")
	global.Spec.Ports[0].Protocol = corev1.ProtocolUDP
	fixed = []any{
		fixture.Service("default/web", "80", "http=8080"),
		fixture.Service("default/api", "http=9000"),
		fixture.Service("default/errors", "8080"),
		fixture.Service("default/canary", "80"),
		fixture.Service("default/dflt", "80"),
		fixture.Service("default/noport", "81"),
		fixture.Service("other/web", "80"),
		cip, ext, global,
		fixture.Ingress("default/a").Host("a.io").Prefix("/", "web:80").Prefix("/api", "api:http").
			Exact("/h", "web:http").Annotate(annotations.Prefix+"default-backend", "errors"),
		fixture.Ingress("default/a-canary").Host("a.io").Prefix("/", "canary:80").
			Annotate(annotations.Prefix+"canary", "true").Annotate(annotations.Prefix+"canary-weight", "20"),
		fixture.Ingress("default/b").Host("b.io").Prefix("/", "cip:80").Prefix("/web", "web:80").
			Annotate(annotations.Prefix+"service-upstream", "true").Annotate(annotations.Prefix+"default-backend", "dflt"),
		fixture.Ingress("default/c").Host("c.io").Prefix("/ghost", "ghost:80").Prefix("/ext", "ext:80").
			Prefix("/noport", "noport:80").Default("dflt:80"),
		fixture.Ingress("other/d").Host("d.io").Prefix("/", "web:80"),
	}
	services = []string{"default/web", "default/api", "default/errors", "default/canary", "default/dflt",
		"default/noport", "default/cip", "default/ext", "default/ghost", "default/unused", "other/web", "tidegate/global"}
	fqdn := fixture.Slice("default/web-fqdn", "web", "8080").Ready("web.example.com").EndpointSlice
	fqdn.AddressType = discoveryv1.AddressTypeFQDN
	unlabelled := fixture.Slice("default/loose", "web", "8080").Ready("10.9.9.9").EndpointSlice
	unlabelled.Labels = nil
	slices = []*discoveryv1.EndpointSlice{fqdn, unlabelled,
		fixture.Slice("default/web-1", "web", "8080").Ready("10.0.0.1", "10.0.0.2").EndpointSlice,
		fixture.Slice("default/web-2", "web", "http=8080").Ready("10.0.0.3").Draining("10.0.0.4").EndpointSlice,
		fixture.Slice("default/api-1", "api", "http=9000").Ready("10.0.1.1").EndpointSlice,
		fixture.Slice("default/errors-1", "errors", "8080").Ready("10.0.2.1").EndpointSlice,
		fixture.Slice("default/dflt-1", "dflt", "80").Ready("10.0.3.1").EndpointSlice,
		fixture.Slice("other/web-1", "web", "80").Ready("10.1.0.1").EndpointSlice,
		fixture.Slice("tidegate/global-1", "global", "8080").Ready("10.2.0.1").EndpointSlice,
	}
	return fixed, services, slices
}

// randomSlice is a new slice for one of the Services, with endpoints in
// every condition, duplicates and IPv6 included.
func randomSlice(rng *rand.Rand, name string, services []string) *discoveryv1.EndpointSlice {
	ns, svc, _ := cutKey(services[rng.IntN(len(services))])
	ports := []string{"80", "8080", "http=8080", "http=9000", "81"}
	sb := fixture.Slice(ns+"/"+name, svc, ports[rng.IntN(len(ports))])
	for i := rng.IntN(4); i > 0; i-- {
		addr := fmt.Sprintf("10.0.%d.%d", rng.IntN(3), 1+rng.IntN(4))
		if rng.IntN(6) == 0 {
			addr = fmt.Sprintf("fd00::%x", 1+rng.IntN(4))
		}
		switch rng.IntN(4) {
		case 0:
			sb.Draining(addr)
		case 1:
			sb.NotReady(addr)
		default:
			sb.Ready(addr)
		}
	}
	return sb.EndpointSlice
}

func cutKey(k string) (string, string, bool) {
	for i := range k {
		if k[i] == '/' {
			return k[:i], k[i+1:], true
		}
	}
	return "", k, false
}

func snapOf(fixed []any, slices []*discoveryv1.EndpointSlice) *snapshot.Snapshot {
	objs := append([]any{}, fixed...)
	for _, s := range slices {
		objs = append(objs, s)
	}
	return fixture.Snapshot(objs...)
}

// TestUpdateIsBuild checks that Update gives exactly what Build gives, over
// a long random walk of endpoint changes (slices added, removed, replaced,
// moved to another Service, a Service's last endpoint going and coming),
// with now and then a change of another kind that must build everything.
func TestUpdateIsBuild(t *testing.T) {
	fixed, services, slices := world()
	opts := model.DefaultOptions()
	opts.DefaultBackendService = "tidegate/global"
	rng := rand.New(rand.NewPCG(1, 2))
	prevSnap := snapOf(fixed, slices)
	prev := model.Build(prevSnap, opts)
	incremental := 0
	for step := 0; step < 2000; step++ {
		what := ""
		switch r := rng.IntN(20); {
		case r < 6 && len(slices) > 0:
			i := rng.IntN(len(slices))
			what = "replace " + slices[i].Name
			slices[i] = randomSlice(rng, slices[i].Name, services)
		case r < 9 && len(slices) > 0:
			i := rng.IntN(len(slices))
			what = "remove " + slices[i].Name
			slices = append(slices[:i:i], slices[i+1:]...)
		case r < 13:
			name := fmt.Sprintf("s%d", step)
			what = "add " + name
			slices = append(slices, randomSlice(rng, name, services))
		case r < 16 && len(slices) > 0:
			// The same slice object, relabelled: a new pointer, as a
			// source would deliver it.
			i := rng.IntN(len(slices))
			moved := slices[i].DeepCopy()
			_, svc, _ := cutKey(services[rng.IntN(len(services))])
			moved.Labels = map[string]string{snapshot.ServiceNameLabel: svc}
			what = "relabel " + moved.Name + " to " + svc
			slices[i] = moved
		case r < 17:
			what = "nothing"
		case r < 18:
			what = "a Service replaced"
			i := rng.IntN(7)
			fixed = append([]any{}, fixed...)
			fixed[i] = fixed[i].(*corev1.Service).DeepCopy()
		case r < 19:
			what = "an Ingress added"
			fixed = append(append([]any{}, fixed...), fixture.Ingress(fmt.Sprintf("default/n%d", step)).
				Host(fmt.Sprintf("n%d.io", step)).Prefix("/", "web:80"))
		default:
			what = "the options changed"
			opts.WatchWithoutClass = !opts.WatchWithoutClass
		}
		next := snapOf(fixed, slices)
		got := model.Update(prev, prevSnap, next, opts)
		want := model.Build(next, opts)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d (%s): Update differs from Build\n got %+v\nwant %+v", step, what, got.Dynamic.Backends, want.Dynamic.Backends)
		}
		if len(got.Structure.Servers) > 0 && len(prev.Structure.Servers) > 0 && &got.Structure.Servers[0] == &prev.Structure.Servers[0] {
			incremental++
		}
		prev, prevSnap = got, next
	}
	// Most steps change endpoints only: they must take the short way.
	if incremental < 1000 {
		t.Errorf("only %d of 2000 steps were incremental", incremental)
	}
}

// TestUpdateLeavesPrevAlone checks that Update does not modify the model
// it starts from (the controller keeps serving it).
func TestUpdateLeavesPrevAlone(t *testing.T) {
	fixed, _, slices := world()
	opts := model.DefaultOptions()
	prevSnap := snapOf(fixed, slices)
	prev := model.Build(prevSnap, opts)
	keep := model.Build(prevSnap, opts)
	slices[2] = fixture.Slice("default/web-1", "web", "8080").Ready("10.0.0.9").EndpointSlice
	next := snapOf(fixed, slices)
	got := model.Update(prev, prevSnap, next, opts)
	if reflect.DeepEqual(got.Dynamic, prev.Dynamic) {
		t.Fatalf("the endpoint change is missing")
	}
	if !reflect.DeepEqual(prev, keep) {
		t.Errorf("Update modified prev")
	}
}

// TestStructuralUpdateReusesParsedAnnotations checks that a structural
// change, which builds everything but reuses the parsed annotations of the
// Ingress objects that stayed, gives exactly what a fresh Build gives —
// with snippets allowed and not (the builder rewrites the report of
// snippet annotations it refuses), rejected and regex annotations — and
// leaves the previous model as it was.
func TestStructuralUpdateReusesParsedAnnotations(t *testing.T) {
	web := fixture.Service("default/web", "80")
	ings := []any{
		fixture.Ingress("default/snip").Host("s.io").Prefix("/", "web:80").
			Annotate(annotations.Prefix+"configuration-snippet", "more_set_headers \"X-A: 1\";").
			Annotate(annotations.Prefix+"server-snippet", "location /x { return 204; }"),
		fixture.Ingress("default/bad").Host("b.io").Prefix("/", "web:80").
			Annotate(annotations.Prefix+"proxy-body-size", "lots").
			Annotate(annotations.Prefix+"ssl-redirect", "false"),
		fixture.Ingress("default/regex").Host("r.io").Specific("/api/(.*)", "web:80").
			Annotate(annotations.Prefix+"use-regex", "true").Annotate(annotations.Prefix+"rewrite-target", "/$1"),
		fixture.Ingress("default/cors").Host("c.io").Prefix("/", "web:80").
			Annotate(annotations.Prefix+"enable-cors", "true").Annotate(annotations.Prefix+"not-a-thing", "x"),
	}
	opts := model.DefaultOptions()
	snapWith := func(allow string, extra ...any) *snapshot.Snapshot {
		objs := append([]any{web, fixture.ConfigMap("tidegate/tidegate", "allow-snippet-annotations="+allow)}, ings...)
		return fixture.Snapshot(append(objs, extra...)...)
	}
	steps := []struct {
		what string
		snap *snapshot.Snapshot
	}{
		{"an Ingress added", snapWith("false", fixture.Ingress("default/n1").Host("n1.io").Prefix("/", "web:80"))},
		{"snippets allowed", snapWith("true", fixture.Ingress("default/n1").Host("n1.io").Prefix("/", "web:80"))},
		{"an Ingress removed", snapWith("true")},
		{"snippets refused again", snapWith("false")},
	}
	prevSnap := snapWith("false")
	prev := model.Build(prevSnap, opts)
	for _, s := range steps {
		keep := model.Build(prevSnap, opts)
		got := model.Update(prev, prevSnap, s.snap, opts)
		if want := model.Build(s.snap, opts); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: Update differs from Build\n got %+v\nwant %+v", s.what, got.Compat, want.Compat)
		}
		if !reflect.DeepEqual(prev, keep) {
			t.Fatalf("%s: Update modified the previous model", s.what)
		}
		prev, prevSnap = got, s.snap
	}
}
