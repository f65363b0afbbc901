package nginx_test

import (
	"fmt"
	"testing"

	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/nginx"
)

// BenchmarkRender10k renders the structure of 10,000 Ingresses, each with
// its own host and Service (test/bench's structural-scale fleet).
func BenchmarkRender10k(b *testing.B) {
	objs := []any{fixture.ConfigMap("tidegate/tidegate", "worker-processes=1")}
	for i := 0; i < 10000; i++ {
		name := fmt.Sprintf("f%05d", i)
		objs = append(objs,
			fixture.Ingress("default/"+name).Host(name+".example.com").Prefix("/", name+":80"),
			fixture.Service("default/"+name, "80"),
			fixture.Slice("default/"+name, name, "8080").Ready(fmt.Sprintf("10.%d.%d.1", 1+i/250, i%250)))
	}
	m := model.Build(fixture.Snapshot(objs...), model.DefaultOptions())
	set := nginx.Settings{WorkDir: "/var/lib/tidegate", HTTPPort: 80, HTTPSPort: 443}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := nginx.Render(m.Structure, set); err != nil {
			b.Fatal(err)
		}
	}
}
