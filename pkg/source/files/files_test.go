package files

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// Fixtures: short YAML documents.

func configMap(ns, name, v string) string {
	meta := "name: " + name
	if ns != "" {
		meta += "\n  namespace: " + ns
	}
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  %s\ndata:\n  v: %q\n", meta, v)
}

const ingress = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
spec:
  ingressClassName: tidegate
  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
`

const service = `apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  ports:
  - port: 80
    targetPort: 8080
`

const endpointSlice = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: shop
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
endpoints:
- addresses: ["10.0.0.1"]
  conditions: {ready: true}
ports:
- port: 8080
`

const ingressClass = `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: tidegate
  namespace: ignored
spec:
  controller: tidegate.io/ingress-controller
`

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template: {}
`

// objects lists a snapshot as "Kind key" lines in snapshot order.
func objects(s *snapshot.Snapshot) []string {
	var out []string
	for _, o := range s.Ingresses {
		out = append(out, "Ingress "+o.Namespace+"/"+o.Name)
	}
	for _, o := range s.IngressClasses {
		out = append(out, "IngressClass "+o.Namespace+"/"+o.Name)
	}
	for _, o := range s.Services {
		out = append(out, "Service "+o.Namespace+"/"+o.Name)
	}
	for _, o := range s.EndpointSlices {
		out = append(out, "EndpointSlice "+o.Namespace+"/"+o.Name)
	}
	for _, o := range s.Secrets {
		out = append(out, "Secret "+o.Namespace+"/"+o.Name)
	}
	for _, o := range s.ConfigMaps {
		out = append(out, "ConfigMap "+o.Namespace+"/"+o.Name+" v="+o.Data["v"])
	}
	return out
}

// write creates dir/rel (and its parents) with content.
func write(t *testing.T, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// mountedLayout lays dir out as the kubelet does for a ConfigMap volume:
// the content in "..<stamp>/", "..data" pointing at it, and each key a
// top-level symlink into "..data/".
func mountedLayout(t *testing.T, dir, stamp string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		write(t, dir, stamp+"/"+name, content)
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err != nil {
			must(t, os.Symlink(filepath.Join("..data", name), link))
		}
	}
	must(t, os.Symlink(stamp, filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantProblem matches a model.Problem; Reason is a substring.
type wantProblem struct {
	kind, object, field, reason string
}

func checkProblems(t *testing.T, got []model.Problem, want []wantProblem) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("problems:\n got %q\nwant %+v", got, want)
	}
	for i, w := range want {
		g := got[i]
		if g.Kind != w.kind || g.Object != w.object || g.Field != w.field || !strings.Contains(g.Reason, w.reason) {
			t.Errorf("problem %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestLoad(t *testing.T) {
	tests := map[string]struct {
		files    map[string]string
		setup    func(t *testing.T, dir string)
		want     []string
		problems []wantProblem
		check    func(t *testing.T, s *snapshot.Snapshot)
	}{
		"multi-document file, blank documents and comments skipped": {
			files: map[string]string{
				"app.yaml": "# the shop\n---\n" + ingress + "---\n" + service + "---\n# nothing here\n---\n" + endpointSlice,
			},
			want: []string{"Ingress shop/web", "Service shop/web", "EndpointSlice shop/web-abc"},
			check: func(t *testing.T, s *snapshot.Snapshot) {
				if got := s.EndpointSlicesFor("shop", "web"); len(got) != 1 {
					t.Errorf("EndpointSlicesFor(shop, web) = %d slices, want 1 (snapshot not indexed?)", len(got))
				}
			},
		},
		"kind List with items": {
			files: map[string]string{
				"list.yaml": "apiVersion: v1\nkind: List\nitems:\n" +
					"- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}, data: {v: '1'}}\n" +
					"- {apiVersion: v1, kind: ConfigMap, metadata: {name: b, namespace: x}, data: {v: '2'}}\n",
			},
			want: []string{"ConfigMap default/a v=1", "ConfigMap x/b v=2"},
		},
		"List items: other kinds skipped, bad items reported": {
			files: map[string]string{
				"list.yaml": "# a list\napiVersion: v1\nkind: List\nitems:\n" +
					"- {apiVersion: apps/v1, kind: Deployment, metadata: {name: d}}\n" +
					"- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}, extra: 1}\n" +
					"- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n",
			},
			want:     []string{"ConfigMap default/b v="},
			problems: []wantProblem{{"File", "list.yaml", "document 1 (line 1)", `items[1]: strict decoding error: unknown field "extra"`}},
		},
		"missing namespace defaults to default, IngressClass stays cluster-scoped": {
			files: map[string]string{"a.yaml": configMap("", "settings", "1") + "---\n" + ingressClass},
			want:  []string{"IngressClass /tidegate", "ConfigMap default/settings v=1"},
		},
		"JSON file": {
			files: map[string]string{"cm.json": `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j"},"data":{"v":"json"}}`},
			want:  []string{"ConfigMap default/j v=json"},
		},
		"bad YAML in one file is reported with file, document and line; the rest loads": {
			files: map[string]string{
				"a.yaml":     configMap("", "a", "1"),
				"sub/b.yaml": configMap("", "b", "2") + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [broken\n",
				"c.yml":      configMap("", "c", "3"),
			},
			want: []string{"ConfigMap default/a v=1", "ConfigMap default/b v=2", "ConfigMap default/c v=3"},
			problems: []wantProblem{
				// The document starts on line 8 of the file; its fourth
				// line opens the flow sequence that never closes.
				{"File", "sub/b.yaml", "document 2 (line 11)", "yaml: line 11"},
			},
		},
		"unknown field is a problem for that document only": {
			files: map[string]string{
				"a.yaml": configMap("", "a", "1") + "---\n" + strings.Replace(service, "spec:\n", "spec:\n  colour: blue\n", 1),
			},
			want:     []string{"ConfigMap default/a v=1"},
			problems: []wantProblem{{"File", "a.yaml", "document 2 (line 8)", `unknown field "spec.colour"`}},
		},
		"duplicate field is a problem": {
			files:    map[string]string{"a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n"},
			problems: []wantProblem{{"File", "a.yaml", "document 1 (line 5)", `key "name" already set`}},
		},
		"missing apiVersion is a problem": {
			files:    map[string]string{"a.yaml": "kind: ConfigMap\nmetadata:\n  name: a\n"},
			problems: []wantProblem{{"File", "a.yaml", "document 1 (line 1)", "apiVersion is missing"}},
		},
		"missing kind is a problem": {
			files:    map[string]string{"a.yaml": "apiVersion: v1\nmetadata:\n  name: a\n"},
			problems: []wantProblem{{"File", "a.yaml", "document 1 (line 1)", "kind is missing"}},
		},
		"missing name is a problem": {
			files:    map[string]string{"a.yaml": "apiVersion: v1\nkind: ConfigMap\ndata: {v: '1'}\n"},
			problems: []wantProblem{{"File", "a.yaml", "document 1", "ConfigMap has no metadata.name"}},
		},
		"duplicate object: first by path wins": {
			setup: func(t *testing.T, dir string) {
				// Written in reverse order: the walk, not creation
				// order, decides.
				write(t, dir, "z.yaml", configMap("", "dup", "from z"))
				write(t, dir, "sub/a.yaml", configMap("", "dup", "from sub/a"))
				write(t, dir, "a.yaml", configMap("default", "dup", "from a"))
			},
			want: []string{"ConfigMap default/dup v=from a"},
			problems: []wantProblem{
				{"ConfigMap", "default/dup", "", "defined again in sub/a.yaml document 1; the one in a.yaml document 1 is used"},
				{"ConfigMap", "default/dup", "", "defined again in z.yaml document 1; the one in a.yaml document 1 is used"},
			},
		},
		"same name in two namespaces or two kinds is not a duplicate": {
			files: map[string]string{
				"a.yaml": configMap("x", "same", "1") + "---\n" + configMap("other", "same", "2") +
					"---\napiVersion: v1\nkind: Secret\nmetadata: {name: same, namespace: x}\n",
			},
			want: []string{"Secret x/same", "ConfigMap other/same v=2", "ConfigMap x/same v=1"},
		},
		"Secret data is base64-decoded and stringData merged over it": {
			files: map[string]string{
				"tls.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: tls, namespace: shop}\ntype: kubernetes.io/tls\n" +
					"data:\n  tls.crt: Q0VSVA==\n  tls.key: b2xk\nstringData:\n  tls.key: KEY\n",
			},
			want: []string{"Secret shop/tls"},
			check: func(t *testing.T, s *snapshot.Snapshot) {
				sec := s.Secret("shop", "tls")
				if sec == nil {
					t.Fatal("Secret(shop, tls) = nil")
				}
				want := map[string]string{"tls.crt": "CERT", "tls.key": "KEY"}
				got := map[string]string{}
				for k, v := range sec.Data {
					got[k] = string(v)
				}
				if !reflect.DeepEqual(got, want) || sec.StringData != nil {
					t.Errorf("Data = %q StringData = %q, want %q and none", got, sec.StringData, want)
				}
			},
		},
		"bad base64 in Secret data is a problem": {
			files:    map[string]string{"s.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  k: '!!notbase64'\n"},
			problems: []wantProblem{{"File", "s.yaml", "document 1 (line 1)", "illegal base64"}},
		},
		"unknown kinds are skipped silently, unsupported versions reported": {
			files: map[string]string{
				"deploy.yaml": deployment + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
				"old.yaml":    strings.Replace(ingress, "networking.k8s.io/v1", "networking.k8s.io/v1beta1", 1),
				"svc.yaml":    service,
			},
			want:     []string{"Service shop/web"},
			problems: []wantProblem{{"File", "old.yaml", "document 1", "use apiVersion networking.k8s.io/v1"}},
		},
		"hidden and non-manifest files are ignored": {
			files: map[string]string{
				".hidden.yaml":     configMap("", "hidden", "1"),
				".git/config.yaml": configMap("", "git", "1"),
				"README.md":        "# not yaml: [",
				"notes.txt":        "nope",
				"ok.YAML":          configMap("", "ok", "1"),
			},
			want: []string{"ConfigMap default/ok v=1"},
		},
		"mounted ConfigMap layout (..data symlink) is read once": {
			setup: func(t *testing.T, dir string) {
				mountedLayout(t, dir, "..2024_01_01_00_00_00.1", map[string]string{
					"app.yaml":  ingress + "---\n" + service,
					"conf.yaml": configMap("", "conf", "1"),
				})
			},
			want: []string{"Ingress shop/web", "Service shop/web", "ConfigMap default/conf v=1"},
		},
		"symlinked subdirectory and symlink loop": {
			setup: func(t *testing.T, dir string) {
				other := t.TempDir()
				write(t, other, "x.yaml", configMap("", "x", "1"))
				must(t, os.Symlink(other, filepath.Join(dir, "linked")))
				must(t, os.Symlink(".", filepath.Join(dir, "loop")))
			},
			want: []string{"ConfigMap default/x v=1"},
		},
		"broken symlink to a manifest is a problem": {
			setup: func(t *testing.T, dir string) {
				must(t, os.Symlink("nowhere.yaml", filepath.Join(dir, "gone.yaml")))
				write(t, dir, "ok.yaml", configMap("", "ok", "1"))
			},
			want:     []string{"ConfigMap default/ok v=1"},
			problems: []wantProblem{{"File", "gone.yaml", "", "broken symlink"}},
		},
		"empty directory": {},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for rel, content := range tt.files {
				write(t, dir, rel, content)
			}
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			s, problems := Load(dir)
			if got := objects(s); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("objects:\n got %q\nwant %q", got, tt.want)
			}
			checkProblems(t, problems, tt.problems)
			if tt.check != nil {
				tt.check(t, s)
			}
		})
	}
}

func TestLoadMissingDirectory(t *testing.T) {
	s, problems := Load(filepath.Join(t.TempDir(), "absent"))
	if got := objects(s); len(got) != 0 {
		t.Errorf("objects = %q, want none", got)
	}
	checkProblems(t, problems, []wantProblem{{"File", ".", "", "no such file or directory"}})
}

// TestLoadDeterministic loads the same content laid down in two different
// orders and wants identical results.
func TestLoadDeterministic(t *testing.T) {
	files := []struct{ rel, content string }{
		{"b/one.yaml", ingress + "---\n" + configMap("", "dup", "b")},
		{"a.yaml", service + "---\n" + endpointSlice + "---\nbroken: [\n"},
		{"c.yaml", configMap("", "dup", "c") + "---\n" + ingressClass},
	}
	a, b := t.TempDir(), t.TempDir()
	for i := range files {
		write(t, a, files[i].rel, files[i].content)
		f := files[len(files)-1-i]
		write(t, b, f.rel, f.content)
	}
	sa, pa := Load(a)
	sb, pb := Load(b)
	if !reflect.DeepEqual(objects(sa), objects(sb)) || !reflect.DeepEqual(pa, pb) {
		t.Errorf("results differ:\n%q %q\n%q %q", objects(sa), pa, objects(sb), pb)
	}
}

// update is what onChange delivered, reduced to comparable strings.
type update struct {
	objects  []string
	problems []string
}

func (u update) has(obj string) bool {
	for _, o := range u.objects {
		if o == obj {
			return true
		}
	}
	return false
}

// watch runs Watch on dir in the background and returns the updates it
// delivers. The test fails if Watch returns an error or does not stop.
func watch(t *testing.T, dir string, opts WatchOptions) <-chan update {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	updates := make(chan update, 1000)
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, dir, opts, func(s *snapshot.Snapshot, problems []model.Problem) {
			u := update{objects: objects(s)}
			for _, p := range problems {
				u.problems = append(u.problems, p.String())
			}
			updates <- u
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Watch = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Watch did not return after cancel")
		}
	})
	return updates
}

// waitFor reads updates until one satisfies ok, failing after a generous
// bound (a hang, not a speed check). It returns how many it read.
func waitFor(t *testing.T, updates <-chan update, what string, ok func(update) bool) int {
	t.Helper()
	timeout := time.After(10 * time.Second)
	var last update
	for n := 1; ; n++ {
		select {
		case u := <-updates:
			if ok(u) {
				return n
			}
			last = u
		case <-timeout:
			t.Fatalf("no update with %s; last: %+v", what, last)
		}
	}
}

func TestWatch(t *testing.T) {
	tests := map[string]struct {
		// setup lays out dir before Watch starts.
		setup func(t *testing.T, dir string)
		// change is the edit made once the initial load arrived.
		change func(t *testing.T, dir string)
		want   func(update) bool
	}{
		"file written in place": {
			setup: func(t *testing.T, dir string) { write(t, dir, "a.yaml", configMap("", "a", "1")) },
			change: func(t *testing.T, dir string) {
				f, err := os.OpenFile(filepath.Join(dir, "a.yaml"), os.O_WRONLY|os.O_TRUNC, 0)
				must(t, err)
				_, err = f.WriteString(configMap("", "a", "2"))
				must(t, err)
				must(t, f.Close())
			},
			want: func(u update) bool { return u.has("ConfigMap default/a v=2") },
		},
		"file created": {
			change: func(t *testing.T, dir string) { write(t, dir, "b.yaml", configMap("", "b", "1")) },
			want:   func(u update) bool { return u.has("ConfigMap default/b v=1") },
		},
		"file removed": {
			setup: func(t *testing.T, dir string) {
				write(t, dir, "a.yaml", configMap("", "a", "1"))
				write(t, dir, "keep.yaml", configMap("", "keep", "1"))
			},
			change: func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, "a.yaml"))) },
			want: func(u update) bool {
				return reflect.DeepEqual(u.objects, []string{"ConfigMap default/keep v=1"})
			},
		},
		"file renamed into the directory (atomic save from outside)": {
			setup: func(t *testing.T, dir string) { write(t, dir, "a.yaml", configMap("", "a", "1")) },
			change: func(t *testing.T, dir string) {
				tmp := filepath.Join(t.TempDir(), "a.yaml.tmp")
				must(t, os.WriteFile(tmp, []byte(configMap("", "a", "2")), 0o644))
				must(t, os.Rename(tmp, filepath.Join(dir, "a.yaml")))
			},
			want: func(u update) bool { return u.has("ConfigMap default/a v=2") },
		},
		"editor save: hidden temp file renamed over the original": {
			setup: func(t *testing.T, dir string) { write(t, dir, "a.yaml", configMap("", "a", "1")) },
			change: func(t *testing.T, dir string) {
				write(t, dir, ".a.yaml.swp", configMap("", "a", "2"))
				must(t, os.Rename(filepath.Join(dir, ".a.yaml.swp"), filepath.Join(dir, "a.yaml")))
			},
			want: func(u update) bool { return u.has("ConfigMap default/a v=2") },
		},
		"..data symlink swap of a mounted ConfigMap": {
			setup: func(t *testing.T, dir string) {
				mountedLayout(t, dir, "..2024_01_01", map[string]string{"conf.yaml": configMap("", "conf", "1")})
			},
			change: func(t *testing.T, dir string) {
				// What the kubelet's atomic writer does: new stamp dir,
				// new ..data_tmp link renamed over ..data, old dir gone.
				mountedLayout(t, dir, "..2024_01_02", map[string]string{"conf.yaml": configMap("", "conf", "2")})
				must(t, os.RemoveAll(filepath.Join(dir, "..2024_01_01")))
			},
			want: func(u update) bool {
				return reflect.DeepEqual(u.objects, []string{"ConfigMap default/conf v=2"}) && len(u.problems) == 0
			},
		},
		"new subdirectory with a file": {
			change: func(t *testing.T, dir string) { write(t, dir, "team/x/c.yaml", configMap("", "c", "1")) },
			want:   func(u update) bool { return u.has("ConfigMap default/c v=1") },
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			updates := watch(t, dir, WatchOptions{Debounce: 10 * time.Millisecond})
			<-updates // the initial load
			tt.change(t, dir)
			waitFor(t, updates, name, tt.want)
		})
	}
}

// TestWatchNewSubdirectoryIsWatched edits a file in place inside a
// directory created after Watch started.
func TestWatchNewSubdirectoryIsWatched(t *testing.T) {
	dir := t.TempDir()
	updates := watch(t, dir, WatchOptions{Debounce: 10 * time.Millisecond})
	<-updates
	write(t, dir, "sub/a.yaml", configMap("", "a", "1"))
	waitFor(t, updates, "sub/a.yaml v=1", func(u update) bool { return u.has("ConfigMap default/a v=1") })
	write(t, dir, "sub/a.yaml", configMap("", "a", "2"))
	waitFor(t, updates, "sub/a.yaml v=2", func(u update) bool { return u.has("ConfigMap default/a v=2") })
}

// TestWatchDebounce makes 20 quick writes and wants a few updates, the last
// with the final content.
func TestWatchDebounce(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", configMap("", "a", "0"))
	updates := watch(t, dir, WatchOptions{Debounce: 100 * time.Millisecond, MaxDelay: 5 * time.Second})
	<-updates
	for i := 1; i <= 20; i++ {
		write(t, dir, "a.yaml", configMap("", "a", fmt.Sprint(i)))
	}
	n := waitFor(t, updates, "v=20", func(u update) bool { return u.has("ConfigMap default/a v=20") })
	if n > 5 {
		t.Errorf("20 quick writes gave %d updates, want a few", n)
	}
}

// TestWatchMaxDelay keeps writing and wants an update before the writes
// stop: a steady stream must not postpone syncs forever.
func TestWatchMaxDelay(t *testing.T) {
	dir := t.TempDir()
	updates := watch(t, dir, WatchOptions{Debounce: 200 * time.Millisecond, MaxDelay: 300 * time.Millisecond})
	<-updates
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	// Each write comes well within Debounce of the previous one, so
	// without MaxDelay no update would arrive until the loop ends.
	for i := 0; i < 2000; i++ {
		select {
		case <-updates:
			return
		case <-tick.C:
			write(t, dir, "a.yaml", configMap("", "a", fmt.Sprint(i)))
		}
	}
	t.Fatal("no update while events kept coming")
}

// TestWatchIdenticalContent rewrites a file with the same bytes (and
// touches it), then makes a real change: the next update must be the real
// change, not a repeat of the old content.
func TestWatchIdenticalContent(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", configMap("", "a", "1"))
	updates := watch(t, dir, WatchOptions{Debounce: 10 * time.Millisecond})
	<-updates
	// An atomic rewrite (no empty file in between) and a touch.
	tmp := filepath.Join(t.TempDir(), "a.yaml")
	write(t, filepath.Dir(tmp), "a.yaml", configMap("", "a", "1"))
	must(t, os.Rename(tmp, filepath.Join(dir, "a.yaml")))
	now := time.Now()
	must(t, os.Chtimes(filepath.Join(dir, "a.yaml"), now, now))
	// Give the watcher time to (not) deliver: a short wait only makes
	// this test weaker, never flaky.
	time.Sleep(200 * time.Millisecond)
	write(t, dir, "b.yaml", configMap("", "b", "1"))
	select {
	case u := <-updates:
		if !u.has("ConfigMap default/b v=1") {
			t.Errorf("update after identical rewrite = %+v, want the one with b", u)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no update after a real change")
	}
}

func TestWatchMissingDirectory(t *testing.T) {
	err := Watch(context.Background(), filepath.Join(t.TempDir(), "absent"), WatchOptions{},
		func(*snapshot.Snapshot, []model.Problem) { t.Error("onChange called") })
	if err == nil || !strings.Contains(err.Error(), "absent") {
		t.Fatalf("Watch = %v, want an error naming the directory", err)
	}
}

// TestWatchMatchesLoad makes a series of changes that the watcher handles by
// re-reading only the files the events name (and some that make it walk the
// directory again), and wants every update to equal a fresh Load of the
// directory: objects, duplicates and problems alike.
func TestWatchMatchesLoad(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	write(t, dir, "a.yaml", configMap("", "a", "1"))
	write(t, outside, "target.yaml", configMap("", "linked", "1"))
	must(t, os.Symlink(filepath.Join(outside, "target.yaml"), filepath.Join(dir, "link.yaml")))
	updates := watch(t, dir, WatchOptions{Debounce: 10 * time.Millisecond})
	<-updates
	steps := []struct {
		name   string
		change func()
	}{
		{"file in a new subdirectory, a duplicate and a broken document", func() {
			write(t, dir, "sub/b.yaml", configMap("", "a", "dup")+"---\nkind: [broken\n")
		}},
		{"written in place", func() { write(t, dir, "a.yaml", configMap("", "a", "2")) }},
		{"renamed within its directory", func() {
			must(t, os.Rename(filepath.Join(dir, "sub/b.yaml"), filepath.Join(dir, "sub/c.yaml")))
		}},
		{"duplicate's winner removed", func() { must(t, os.Remove(filepath.Join(dir, "a.yaml"))) }},
		{"symlink target written in place", func() { write(t, outside, "target.yaml", configMap("", "linked", "2")) }},
		{"a List and a second document", func() {
			write(t, dir, "list.yaml", "apiVersion: v1\nkind: List\nitems:\n"+
				"- {apiVersion: v1, kind: ConfigMap, metadata: {name: l1}, data: {v: '1'}}\n"+
				"- {apiVersion: v1, kind: ConfigMap, metadata: {name: l2}, bad: 1}\n---\n"+configMap("x", "second", "1"))
		}},
		{"atomic save over a file with a same document elsewhere", func() {
			write(t, dir, ".list.yaml.tmp", configMap("x", "second", "1"))
			must(t, os.Rename(filepath.Join(dir, ".list.yaml.tmp"), filepath.Join(dir, "list.yaml")))
		}},
		{"subdirectory removed", func() { must(t, os.RemoveAll(filepath.Join(dir, "sub"))) }},
		{"symlink removed", func() { must(t, os.Remove(filepath.Join(dir, "link.yaml"))) }},
	}
	for _, st := range steps {
		st.change()
		s, problems := Load(dir)
		want := update{objects: objects(s)}
		for _, p := range problems {
			want.problems = append(want.problems, p.String())
		}
		waitFor(t, updates, st.name, func(u update) bool { return reflect.DeepEqual(u, want) })
	}
}

// TestWatchKeepsCreationTime edits an Ingress without a creationTimestamp
// and wants the time it was first read to stay, while other files change.
func TestWatchKeepsCreationTime(t *testing.T) {
	dir := t.TempDir()
	ingress := func(host string) string {
		return "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\nspec:\n  rules:\n  - host: " + host + "\n"
	}
	write(t, dir, "web.yaml", ingress("a.example.com"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	snaps := make(chan *snapshot.Snapshot, 100)
	go func() {
		_ = Watch(ctx, dir, WatchOptions{Debounce: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)},
			func(s *snapshot.Snapshot, _ []model.Problem) { snaps <- s })
	}()
	next := func() *snapshot.Snapshot {
		select {
		case s := <-snaps:
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("no update")
			return nil
		}
	}
	first := next().Ingresses[0].CreationTimestamp
	if first.IsZero() {
		t.Fatal("Ingress without creationTimestamp was not stamped")
	}
	write(t, dir, "other.yaml", configMap("", "o", "1"))
	if got := next().Ingresses[0].CreationTimestamp; !got.Equal(&first) {
		t.Errorf("after another file changed: creationTimestamp %v, want %v", got, first)
	}
	write(t, dir, "web.yaml", ingress("b.example.com"))
	s := next()
	if got := s.Ingresses[0].CreationTimestamp; !got.Equal(&first) || s.Ingresses[0].Spec.Rules[0].Host != "b.example.com" {
		t.Errorf("after the Ingress changed: creationTimestamp %v host %s, want %v b.example.com", got, s.Ingresses[0].Spec.Rules[0].Host, first)
	}
}

// TestDecodeMatchesStrictCodec checks the one-parse decoder against the
// strict YAML codec it stands in for: the same objects, the same kinds,
// the same errors, for valid documents and for each kind of mistake.
func TestDecodeMatchesStrictCodec(t *testing.T) {
	docs := map[string]string{
		"slice":                    "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: a\n  labels: {kubernetes.io/service-name: a}\naddressType: IPv4\nports:\n  - port: 8080\nendpoints:\n  - addresses: [\"10.0.0.1\"]\n    conditions: {ready: true}\n",
		"ingress with annotations": "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: a\n  annotations:\n    nginx.ingress.kubernetes.io/proxy-body-size: \"8m\"\n    nginx.ingress.kubernetes.io/ssl-redirect: \"false\"\nspec:\n  rules:\n  - host: a.example.com\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend: {service: {name: a, port: {number: 80}}}\n",
		"secret with stringData":   "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: QUJD\nstringData:\n  tls.key: xyz\n",
		"configmap numbers":        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  worker-processes: \"2\"\n",
		"json":                     `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}`,
		"list":                     "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s}\n",
		"unknown field":            "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  portz: []\n",
		"duplicate key":            "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  name: t\n",
		"syntax error":             "apiVersion: v1\nkind: Service\nmetadata: {name: s\n",
		"kind missing":             "apiVersion: v1\nmetadata: {name: s}\n",
		"unregistered kind":        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n",
		"wrong type":               "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: 80\n",
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			wantObj, wantGVK, wantErr := codec.Decode([]byte(doc), nil, nil)
			gotObj, gotGVK, gotErr := decode([]byte(doc))
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Fatalf("error %q, the strict YAML codec gives %q", fmt.Sprint(gotErr), fmt.Sprint(wantErr))
			}
			if fmt.Sprint(gotGVK) != fmt.Sprint(wantGVK) {
				t.Errorf("kind %v, the strict YAML codec gives %v", gotGVK, wantGVK)
			}
			if !reflect.DeepEqual(gotObj, wantObj) {
				t.Errorf("decoded\n%#v\nthe strict YAML codec gives\n%#v", gotObj, wantObj)
			}
		})
	}
}
