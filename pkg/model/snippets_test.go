package model_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/annotations"
	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
)

const allowSnippets = "allow-snippet-annotations=true"

func compatOf(m *model.Model, ing, key string) annotations.Entry {
	for _, e := range m.Compat[ing] {
		if e.Key == key {
			return e
		}
	}
	return annotations.Entry{}
}

func TestSnippets(t *testing.T) {
	web := fixture.Service("default/web", "80")
	good := fixture.Ingress("snip").Host("snip.io").Prefix("/", "web:80").
		Annotate(annotations.Prefix+"configuration-snippet", "add_header X-Snip \"1\";\nproxy_set_header X-From-Snippet yes;")
	bad := fixture.Ingress("lua").Host("lua.io").Prefix("/", "web:80").
		Annotate(annotations.Prefix+"configuration-snippet", `content_by_lua_block { ngx.say("x") }`)

	t.Run("off: ignored as unsupported, the Ingress serves", func(t *testing.T) {
		m := model.Build(fixture.Snapshot(web, good, bad), model.DefaultOptions())
		for _, ing := range []string{"default/snip", "default/lua"} {
			if e := compatOf(m, ing, "configuration-snippet"); e.Status != annotations.Unsupported || !strings.Contains(e.Detail, "never pastes user text") {
				t.Errorf("%s: %+v", ing, e)
			}
		}
		for _, s := range m.Structure.Servers {
			for _, l := range s.Locations {
				if len(l.Config.Snippets.Location) > 0 {
					t.Errorf("%s: snippet applied while allow-snippet-annotations is off", s.Host)
				}
			}
		}
		if got := strings.Join(routes(m), "\n"); !strings.Contains(got, "lua.io prefix / -> default/web:80") || !strings.Contains(got, "snip.io prefix / -> default/web:80") {
			t.Errorf("routes:\n%s", got)
		}
	})
	t.Run("on: allow-listed directives apply, a refused one skips its Ingress only", func(t *testing.T) {
		m := model.Build(fixture.Snapshot(web, good, bad, fixture.ConfigMap("tidegate/tidegate", allowSnippets)), model.DefaultOptions())
		if e := compatOf(m, "default/snip", "configuration-snippet"); e.Status != annotations.Different {
			t.Errorf("snip: %+v", e)
		}
		got := strings.Join(routes(m), "\n")
		if strings.Contains(got, "lua.io") || !strings.Contains(got, "snip.io prefix / -> default/web:80") {
			t.Errorf("routes:\n%s", got)
		}
		ps := strings.Join(problems(m), "\n")
		if !strings.Contains(ps, `Ingress default/lua metadata.annotations[nginx.ingress.kubernetes.io/configuration-snippet]: directive "content_by_lua_block" (line 1) is refused`) ||
			!strings.Contains(ps, "the whole Ingress is skipped") {
			t.Errorf("problems:\n%s", ps)
		}
		if strings.Contains(ps, "the annotation is ignored") {
			t.Errorf("a skipped Ingress's snippet is not 'ignored':\n%s", ps)
		}
		for _, s := range m.Structure.Servers {
			if s.Host == "snip.io" && len(s.Locations[0].Config.Snippets.Location) != 2 {
				t.Errorf("snip.io: %+v", s.Locations[0].Config.Snippets)
			}
		}
	})
	t.Run("server-snippet: the oldest Ingress of the host wins", func(t *testing.T) {
		old := fixture.Ingress("old").Created(time.Minute).Host("s.io").Prefix("/a", "web:80").
			Annotate(annotations.Prefix+"server-snippet", "add_header X-Old 1;")
		young := fixture.Ingress("young").Created(time.Hour).Host("s.io").Prefix("/b", "web:80").
			Annotate(annotations.Prefix+"server-snippet", "add_header X-Young 1;")
		m := model.Build(fixture.Snapshot(web, old, young, fixture.ConfigMap("tidegate/tidegate", allowSnippets)), model.DefaultOptions())
		for _, s := range m.Structure.Servers {
			if s.Host == "s.io" && (len(s.Snippet) != 1 || s.Snippet[0].Args[0] != "X-Old") {
				t.Errorf("s.io snippet: %+v", s.Snippet)
			}
		}
		if ps := strings.Join(problems(m), "\n"); !strings.Contains(ps, "Ingress default/young") || !strings.Contains(ps, "older Ingress default/old") {
			t.Errorf("problems:\n%s", ps)
		}
	})
}

func TestCustomHeaders(t *testing.T) {
	web := fixture.Service("default/web", "80")
	ing := func(ref string) *fixture.IngressBuilder {
		return fixture.Ingress("h").Host("h.io").Prefix("/", "web:80").Annotate(annotations.Prefix+"custom-headers", ref)
	}
	headers := fixture.ConfigMap("default/hdrs", "X-Frame-Options=DENY", "X-Cost=$5 \"each\"")
	allowed := fixture.ConfigMap("tidegate/tidegate", "global-allowed-response-headers=x-frame-options, X-Cost")
	tests := map[string]struct {
		objs    []any
		want    string // "Name=Value" joined by ";"
		problem string
		warning bool
	}{
		"allowed headers apply, sorted": {objs: []any{ing("default/hdrs"), headers, allowed}, want: "X-Cost=$5 \"each\";X-Frame-Options=DENY"},
		"name without namespace":        {objs: []any{ing("hdrs"), headers, allowed}, want: "X-Cost=$5 \"each\";X-Frame-Options=DENY"},
		"a header off the global list": {objs: []any{ing("hdrs"), headers, fixture.ConfigMap("tidegate/tidegate", "global-allowed-response-headers=X-Cost")},
			problem: `header "X-Frame-Options" of ConfigMap default/hdrs is not listed in global-allowed-response-headers`},
		"no global list at all": {objs: []any{ing("hdrs"), headers}, problem: "not listed in global-allowed-response-headers"},
		"missing ConfigMap":     {objs: []any{ing("default/nope"), allowed}, problem: "ConfigMap default/nope not found", warning: true},
		"another namespace":     {objs: []any{ing("other/hdrs"), fixture.ConfigMap("other/hdrs", "X-Cost=1"), allowed}, problem: "only from a ConfigMap in the Ingress's namespace"},
		"bad key": {objs: []any{ing("hdrs"), fixture.ConfigMap("default/hdrs", "X Bad=1"), allowed},
			problem: `key "X Bad" is not a header name`},
		"control character": {objs: []any{ing("hdrs"), fixture.ConfigMap("default/hdrs", "X-Cost=a\nb"), allowed},
			problem: "control character"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := model.Build(fixture.Snapshot(append([]any{web}, tc.objs...)...), model.DefaultOptions())
			var got []string
			found := false
			for _, s := range m.Structure.Servers {
				if s.Host != "h.io" {
					continue
				}
				found = true
				for _, h := range s.Locations[0].ResponseHeaders {
					got = append(got, h.Name+"="+h.Value)
				}
			}
			if !found {
				t.Fatal("the Ingress must still be served")
			}
			if g := strings.Join(got, ";"); g != tc.want {
				t.Errorf("headers %q, want %q", g, tc.want)
			}
			var match *model.Problem
			for i, p := range m.Problems {
				if strings.Contains(p.Reason, tc.problem) && tc.problem != "" {
					match = &m.Problems[i]
				}
			}
			switch {
			case tc.problem == "" && len(m.Problems) > 0:
				t.Errorf("unexpected problems: %v", problems(m))
			case tc.problem != "" && match == nil:
				t.Errorf("no problem containing %q: %v", tc.problem, problems(m))
			case match != nil && (match.Object != "default/h" || match.Warning != tc.warning || !strings.Contains(match.Reason, "served without these headers")):
				t.Errorf("problem %+v", *match)
			}
		})
	}
}

func TestServiceUpstream(t *testing.T) {
	svc := fixture.Service("default/web", "80")
	svc.Spec.ClusterIP = "10.96.0.10"
	headless := fixture.Service("default/db", "80")
	headless.Spec.ClusterIP = "None"
	slices := []any{fixture.Slice("default/web-1", "web", "8080").Ready("10.0.0.1", "10.0.0.2"), fixture.Slice("default/db-1", "db", "8080").Ready("10.0.1.1")}
	up := annotations.Prefix + "service-upstream"
	objs := append([]any{svc, headless,
		fixture.Ingress("cluster").Host("c.io").Prefix("/", "web:80").Annotate(up, "true"),
		fixture.Ingress("pods").Host("p.io").Prefix("/", "web:80"),
		fixture.Ingress("headless").Host("d.io").Prefix("/", "db:80").Annotate(up, "true")}, slices...)
	m := model.Build(fixture.Snapshot(objs...), model.DefaultOptions())
	got := strings.Join(routes(m), "\n")
	for _, want := range []string{"c.io prefix / -> clusterip:default/web:80", "p.io prefix / -> default/web:80", "d.io prefix / -> default/db:80"} {
		if !strings.Contains(got, want) {
			t.Errorf("routes lack %q:\n%s", want, got)
		}
	}
	for _, be := range m.Dynamic.Backends {
		switch be.Name {
		case "clusterip:default/web:80":
			if len(be.Endpoints) != 1 || be.Endpoints[0].Address != "10.96.0.10" || be.Endpoints[0].Port != 80 {
				t.Errorf("service-upstream endpoints: %+v", be.Endpoints)
			}
		case "default/web:80":
			if len(be.Endpoints) != 2 {
				t.Errorf("endpoints backend: %+v", be.Endpoints)
			}
		}
	}
	if ps := strings.Join(problems(m), "\n"); !strings.Contains(ps, "Ingress default/headless") || !strings.Contains(ps, "service default/db is headless (clusterIP None)") {
		t.Errorf("problems:\n%s", ps)
	}
	if e := compatOf(m, "default/cluster", "service-upstream"); e.Status != annotations.Different {
		t.Errorf("report: %+v", e)
	}
}

// The admission webhook refuses an Ingress whose snippet is refused, only
// while snippets are allowed (otherwise they are merely ignored).
func TestValidateIngressSnippets(t *testing.T) {
	lua := fixture.Ingress("lua").Host("lua.io").Prefix("/", "web:80").
		Annotate(annotations.Prefix+"configuration-snippet", "include /etc/passwd;").Ingress
	for allow, wantDeny := range map[string]bool{"true": true, "false": false} {
		snap := fixture.Snapshot(fixture.Service("default/web", "80"), fixture.ConfigMap("tidegate/tidegate", "allow-snippet-annotations="+allow))
		ps, ours := model.ValidateIngress(snap, lua, model.DefaultOptions())
		deny := false
		for _, p := range ps {
			if !p.Warning {
				deny = true
			}
		}
		if !ours || deny != wantDeny {
			t.Errorf("allow-snippet-annotations=%s: problems %v, want deny=%v", allow, ps, wantDeny)
		}
	}
}
