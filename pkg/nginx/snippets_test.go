package nginx_test

import (
	"strings"
	"testing"

	"github.com/tidegate/tidegate/pkg/confparse"
	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/nginx"
)

// TestAddHeaderInheritance: nginx drops every inherited add_header in a
// block that has one of its own. Every block of a server that adds headers
// must therefore carry HSTS (http level) and the server-snippet's headers.
func TestAddHeaderInheritance(t *testing.T) {
	objs := []any{fixture.Service("web", "80"),
		fixture.ConfigMap("tidegate/tidegate", "allow-snippet-annotations=true", "global-allowed-response-headers=X-Custom"),
		fixture.ConfigMap("default/hdrs", "X-Custom=1"),
		fixture.Ingress("cors").Host("a.io").Prefix("/cors", "web:80").Annotate("nginx.ingress.kubernetes.io/enable-cors", "true").
			Annotate("nginx.ingress.kubernetes.io/server-snippet", "add_header X-Server 1;"),
		fixture.Ingress("custom").Host("a.io").Prefix("/custom", "web:80").Annotate("nginx.ingress.kubernetes.io/custom-headers", "hdrs").
			Annotate("nginx.ingress.kubernetes.io/enable-cors", "true"),
		fixture.Ingress("snip").Host("a.io").Prefix("/snip", "web:80").Annotate("nginx.ingress.kubernetes.io/configuration-snippet", "add_header X-Snip 1;"),
		fixture.Ingress("plain").Host("b.io").Prefix("/", "web:80").Annotate("nginx.ingress.kubernetes.io/enable-cors", "true"),
	}
	m := model.Build(fixture.Snapshot(objs...), model.DefaultOptions())
	if len(m.Problems) > 0 {
		t.Fatalf("problems: %v", m.Problems)
	}
	r, err := nginx.Render(m.Structure, nginx.Settings{WorkDir: goldenWorkDir, HTTPPort: 80, HTTPSPort: 443})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := confparse.Parse(string(r.Conf))
	if err != nil {
		t.Fatal(err)
	}
	blocks := 0
	var check func(ds []confparse.Directive, server string, path string)
	check = func(ds []confparse.Directive, server, path string) {
		var names []string
		for _, d := range ds {
			if d.Name == "add_header" {
				names = append(names, d.Args[0])
			}
		}
		if len(names) > 0 && server != "" {
			blocks++
			have := "," + strings.Join(names, ",") + ","
			want := []string{"Strict-Transport-Security"}
			if server == `a.io` {
				want = append(want, "X-Server")
			}
			for _, w := range want {
				if !strings.Contains(have, ","+w+",") {
					t.Errorf("server %s, block %s adds %v but drops the inherited %s", server, path, names, w)
				}
			}
		}
		for _, d := range ds {
			if !d.IsBlock {
				continue
			}
			s, p := server, path+" > "+d.Name+" "+strings.Join(d.Args, " ")
			if d.Name == "server" {
				s, p = "", "server"
				for _, c := range d.Block {
					if c.Name == "server_name" {
						s = c.Args[0]
					}
				}
			}
			check(d.Block, s, p)
		}
	}
	check(tree, "", "")
	if blocks < 8 {
		t.Errorf("only %d blocks with add_header checked; the fixture should produce more", blocks)
	}
}
