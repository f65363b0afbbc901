package hostile

import (
	"context"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/dynamic"
	"github.com/tidegate/tidegate/pkg/dynamic/dynamictest"
	"github.com/tidegate/tidegate/pkg/model"
)

// FuzzLuaSchema posts random bodies to the control socket's push endpoints
// of a real nginx. Invariants: the answer is 200, 400 or 409 (never a 5xx,
// never a crash), a 400 carries a JSON reason, nginx keeps serving, and
// whatever the body stored (a version far ahead above all), the client's
// next pushes land: nothing can wedge them.
func FuzzLuaSchema(f *testing.F) {
	f.Add(true, `{"version":1,"full":true,"backends":[{"name":"a/b:80","algorithm":"round_robin","endpoints":[{"address":"127.0.0.1","port":80,"weight":1}]}]}`)
	f.Add(true, `{"version":2,"full":false,"backends":[],"removed":["a/b:80"]}`)
	f.Add(false, `{"version":3,"full":true,"certificates":[{"id":"a/b","hosts":["a.io"],"cert":"x","key":"y"}]}`)
	f.Add(true, `{"version":1e309,"backends":[{"name":"os.execute('id')","endpoints":[{"address":"../../etc/passwd","port":-1}]}]}`)
	f.Add(true, `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`)
	f.Add(false, "\x00\xff{\"version\":")
	// Versions no clock gives: 2^53 was stored and then none was newer.
	for _, v := range []string{"9007199254740992", "9007199254740993", "9007199254740991", "1125899906842624",
		"1125899906842625", "1e300", "1e16", "-1", "0", "-0", "1.5", "0.5e1", "NaN", "Infinity", "-Infinity",
		`"NaN"`, `"1"`, "null", "true", "[]", "{}", "0x10", "1e", "99999999999999999999999999999"} {
		f.Add(true, `{"version":`+v+`,"full":true,"backends":[]}`)
		f.Add(false, `{"version":`+v+`,"full":true,"certificates":[]}`)
	}
	// One nginx for the whole run, owned by f so it outlives every input.
	n := dynamictest.New(f, dynamictest.Locations{"/x": "a/b:80"})
	n.Start(f)
	a := dynamictest.StartBackend(f, "a")
	client := dynamic.New(n.Socket, n.Token)
	want := []model.Backend{{Name: "a/b:80", Algorithm: model.DefaultAlgorithm,
		Endpoints: []model.Endpoint{{Address: a.Addr, Port: a.Port, Weight: 1}}}}
	f.Fuzz(func(t *testing.T, backends bool, body string) {
		path := "/configuration/certificates"
		if backends {
			path = "/configuration/backends"
		}
		status, answer := n.Control(t, "POST", path, []byte(body))
		dynamictest.CheckControlAnswer(t, path+" "+body, status, answer)
		if st, _ := n.Get(t, "/x"); st != 200 && st != 503 && st != 502 {
			t.Fatalf("nginx stopped serving after %q: %d", body, st)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := client.PushBackends(ctx, true, want, nil); err != nil {
			t.Fatalf("after %s %q the client's push failed: %v", path, body, err)
		}
		if err := client.PushCertificates(ctx, true, nil, nil); err != nil {
			t.Fatalf("after %s %q the client's push failed: %v", path, body, err)
		}
		if st, got := n.Get(t, "/x"); st != 200 || got != "a" {
			t.Fatalf("after %s %q and the client's push: got %d %q, want 200 a", path, body, st, got)
		}
	})
}
