package nginx_test

import (
	"bytes"
	"testing"

	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/nginx"
)

// A restarted tidegate reads the generation of the nginx.conf a previous
// run installed from the file itself (it serves that file again if the
// new configuration fails the check).
func TestInstalledGeneration(t *testing.T) {
	set := nginx.Settings{WorkDir: goldenWorkDir, HTTPPort: 80, HTTPSPort: 443}
	objs := []any{fixture.Service("web", "80"), fixture.Ingress("a").Host("a.io").Prefix("/", "web:80")}
	r, err := nginx.Render(model.Build(fixture.Snapshot(objs...), model.DefaultOptions()).Structure, set)
	if err != nil {
		t.Fatal(err)
	}
	if gen, err := nginx.InstalledGeneration(r.Conf); err != nil || gen != r.Generation {
		t.Errorf("InstalledGeneration = %q, %v; want %q", gen, err, r.Generation)
	}
	other := bytes.ReplaceAll(r.Conf, []byte("location = /tidegate/generation"), []byte("location = /tidegate/elsewhere"))
	if gen, err := nginx.InstalledGeneration(other); err == nil {
		t.Errorf("an nginx.conf without the generation location gave %q", gen)
	}
}
