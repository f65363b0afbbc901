package files

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tidegate/tidegate/pkg/snapshot"
)

// sliceDoc is an EndpointSlice document; ns "" leaves the namespace out.
func sliceDoc(ns, name, svc string, addrs ...string) string {
	meta := "name: " + name
	if ns != "" {
		meta += "\n  namespace: " + ns
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  %s\n  labels: {kubernetes.io/service-name: %s}\naddressType: IPv4\nports:\n  - port: 8080\nendpoints:\n", meta, svc)
	for _, a := range addrs {
		fmt.Fprintf(&b, "  - addresses: [%q]\n", a)
	}
	return b.String()
}

// TestPatchIsAssemble checks that patch gives exactly what assemble gives,
// over a random walk of writes to a directory where slices share files
// with other objects, sit in Lists, are defined twice (in one file, in two
// files, with byte-identical documents), have no namespace, or sit next
// to a document that does not decode; some writes move a slice to another
// Service, rename it, add or remove a file, or break a document, which
// patch must leave to assemble.
func TestPatchIsAssemble(t *testing.T) {
	dir := t.TempDir()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	addrs := func() []string {
		var out []string
		for i := rng.IntN(3); i >= 0; i-- {
			out = append(out, fmt.Sprintf("10.0.0.%d", 1+rng.IntN(5)))
		}
		return out
	}
	svcs := []string{"web", "api"}
	list := func(docs ...string) string {
		var items []string
		for _, d := range docs {
			items = append(items, "- "+strings.ReplaceAll(strings.TrimSpace(d), "\n", "\n  "))
		}
		return "apiVersion: v1\nkind: List\nitems:\n" + strings.Join(items, "\n") + "\n"
	}
	// Each file is a function of a few random choices.
	files := map[string]func() string{
		"a.yaml": func() string {
			return ingress + "---\n" + service + "---\n" + sliceDoc("", "web-1", "web", addrs()...)
		},
		"b.yaml": func() string {
			return sliceDoc("default", "web-2", svcs[rng.IntN(2)], addrs()...) + "---\n" + sliceDoc("", "api-1", "api", addrs()...)
		},
		"c.yaml": func() string {
			return list(sliceDoc("", "api-2", "api", addrs()...), sliceDoc("other", "api-2", "api", addrs()...),
				sliceDoc("", "api-2", svcs[rng.IntN(2)], addrs()...)) // twice in one List
		},
		// the same key as a.yaml's slice: a duplicate that loses
		"d.yaml": func() string { return sliceDoc("default", "web-1", "web", addrs()...) },
		// twice the same key in one file, in two documents
		"e.yaml": func() string {
			return sliceDoc("", "twice", "web", addrs()...) + "---\n" + sliceDoc("", "twice", "api", addrs()...)
		},
		// often byte-identical to b.yaml's first document (decoded once)
		"f.yaml": func() string { return sliceDoc("default", "web-2", "web", "10.0.0.1") },
		"g.yaml": func() string {
			return "kind: [broken\n---\n" + sliceDoc("", "g", "web", addrs()...)
		},
	}
	names := []string{"a.yaml", "b.yaml", "c.yaml", "d.yaml", "e.yaml", "f.yaml", "g.yaml"}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range names {
		write(n, files[n]())
	}
	tr := newTree(dir, slog.New(slog.DiscardHandler))
	tr.rescan()
	prev := tr.assemble()
	patched := 0
	for step := 0; step < 400; step++ {
		name := names[rng.IntN(len(names))]
		what := "rewrite " + name
		switch r := rng.IntN(20); {
		case r < 14:
			write(name, files[name]())
		case r < 15:
			what = "touch " + name
			b, _ := os.ReadFile(filepath.Join(dir, name))
			write(name, string(b))
		case r < 16:
			what = "rename a slice in " + name
			write(name, sliceDoc("", fmt.Sprintf("renamed-%d", step), "web", addrs()...))
		case r < 17:
			what = "break " + name
			write(name, "kind: [\n")
		case r < 18:
			what = "remove " + name
			os.Remove(filepath.Join(dir, name))
		default:
			what = "add extra.yaml"
			write("extra.yaml", sliceDoc("", "extra", "web", addrs()...))
			name = "extra.yaml"
		}
		if !tr.refresh(map[string]bool{filepath.Join(real, name): true}) {
			t.Fatalf("step %d (%s): refresh refused", step, what)
		}
		got, ok := tr.patch(prev)
		want := tr.assemble()
		if ok {
			patched++
			compareResults(t, fmt.Sprintf("step %d (%s)", step, what), got, want)
		}
		prev = want
	}
	if patched < 150 {
		t.Errorf("only %d of 400 steps were patched", patched)
	}
}

// compareResults fails unless two reads hold the same objects in the same
// order (the very same pointers), with the same lookups, problems and
// digest.
func compareResults(t *testing.T, what string, got, want result) {
	t.Helper()
	g, w := got.snap, want.snap
	same := reflect.DeepEqual(got.problems, want.problems) && got.digest == want.digest && got.files == want.files &&
		equalPtrs(g.Ingresses, w.Ingresses) && equalPtrs(g.IngressClasses, w.IngressClasses) &&
		equalPtrs(g.Services, w.Services) && equalPtrs(g.EndpointSlices, w.EndpointSlices) &&
		equalPtrs(g.Secrets, w.Secrets) && equalPtrs(g.ConfigMaps, w.ConfigMaps)
	for _, es := range append(g.EndpointSlices, w.EndpointSlices...) {
		svc := es.Labels[snapshot.ServiceNameLabel]
		same = same && equalPtrs(g.EndpointSlicesFor(es.Namespace, svc), w.EndpointSlicesFor(es.Namespace, svc))
	}
	if !same {
		t.Fatalf("%s: patch differs from assemble\n got %v %v\nwant %v %v", what, objects(g), got.problems, objects(w), want.problems)
	}
}

func equalPtrs[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
