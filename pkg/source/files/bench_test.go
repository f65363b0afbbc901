package files

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFleet lays out n Ingresses as test/bench does: one file each with
// its Ingress, Service and a 10-endpoint EndpointSlice, plus the route under
// test's slice in a file of its own.
func writeFleet(b *testing.B, dir string, n int) {
	b.Helper()
	put := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("f%05d", i)
		var sb strings.Builder
		fmt.Fprintf(&sb, "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: %s\nspec:\n  ingressClassName: tidegate\n  rules:\n  - host: %s.example.com\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service:\n            name: %s\n            port: {number: 80}\n", name, name, name)
		fmt.Fprintf(&sb, "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: %s\nspec:\n  ports:\n  - port: 80\n", name)
		fmt.Fprintf(&sb, "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: %s\n  labels: {kubernetes.io/service-name: %s}\naddressType: IPv4\nports:\n  - port: 8080\nendpoints:\n", name, name)
		for k := 0; k < 10; k++ {
			fmt.Fprintf(&sb, "  - addresses: [\"10.%d.%d.%d\"]\n    conditions: {ready: true}\n", 1+i/250, i%250, 1+k)
		}
		put(name+".yaml", sb.String())
	}
	put("bench-slice.yaml", benchSlice("127.0.3.1"))
}

func benchSlice(addr string) string {
	return "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: bench\n  labels: {kubernetes.io/service-name: bench}\naddressType: IPv4\nports:\n  - port: 8080\nendpoints:\n  - addresses: [\"" + addr + "\"]\n    conditions: {ready: true}\n"
}

// BenchmarkChange1k is one endpoint change with 1,000 Ingresses loaded:
// "patch" re-reads the one file the event names and puts its slice in the
// place of the old one in the last snapshot (what Watch does now),
// "refresh" re-reads that file and assembles the snapshot of every file,
// "rescan" walks and reads the whole directory (decoding aside) and
// assembles.
func BenchmarkChange1k(b *testing.B) {
	dir := b.TempDir()
	writeFleet(b, dir, 1000)
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		b.Fatal(err)
	}
	changed := filepath.Join(real, "bench-slice.yaml")
	for _, mode := range []string{"patch", "refresh", "rescan"} {
		b.Run(mode, func(b *testing.B) {
			t := newTree(dir, slog.New(slog.DiscardHandler))
			t.rescan()
			prev := t.assemble()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if err := os.WriteFile(changed, []byte(benchSlice(fmt.Sprintf("127.0.3.%d", 1+i%2))), 0o644); err != nil {
					b.Fatal(err)
				}
				if mode == "rescan" || !t.refresh(map[string]bool{changed: true}) {
					t.rescan()
				}
				r, ok := t.patch(prev)
				if mode != "patch" || !ok {
					r = t.assemble()
				}
				if len(r.snap.EndpointSlices) != 1001 || (mode == "patch") != r.patched {
					b.Fatalf("%d slices, patched %v", len(r.snap.EndpointSlices), r.patched)
				}
				prev = r
			}
		})
	}
}
