package hostile

import (
	"context"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/dynamic"
	"github.com/tidegate/tidegate/pkg/dynamic/dynamictest"
	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
)

// FuzzEndpointAddress feeds random EndpointSlice addresses (a manifests
// directory is not validated by an API server) through the model to a real
// Lua data plane. Invariant: Lua takes every backend the model builds, so
// one odd address never holds back every other endpoint change.
func FuzzEndpointAddress(f *testing.F) {
	for _, a := range []string{"10.0.0.1", "::1", "fe80::1%eth0", "::ffff:10.0.0.1", "2001:db8::1", "010.0.0.1", "1.2.3.4.5", "::ffff:1.2.3.400", "0.0.0.0", "FE80::A"} {
		f.Add(a)
	}
	lua := dynamictest.New(f, dynamictest.Locations{"/x": "fz/web:80"})
	lua.Start(f)
	push := dynamic.New(lua.Socket, lua.Token)
	f.Fuzz(func(t *testing.T, addr string) {
		m := model.Build(fixture.Snapshot(fixture.Service("fz/web", "80"),
			fixture.Ingress("fz/ing").Host("a.io").Prefix("/", "web:80"),
			fixture.Slice("fz/web-1", "web", "80").Ready("10.0.0.1", addr)), model.DefaultOptions())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := push.PushBackends(ctx, true, m.Dynamic.Backends, nil); err != nil {
			t.Fatalf("address %q: the Lua data plane refused the model's backends: %v", addr, err)
		}
	})
}
