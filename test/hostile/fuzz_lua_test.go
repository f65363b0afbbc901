package hostile

import (
	"testing"

	"github.com/tidegate/tidegate/pkg/dynamic/dynamictest"
)

// FuzzLuaSchema posts random bodies to the control socket's push endpoints
// of a real nginx. Invariants: the answer is 200, 400 or 409 (never a 5xx,
// never a crash), a 400 carries a JSON reason, and nginx keeps serving.
func FuzzLuaSchema(f *testing.F) {
	f.Add(true, `{"version":1,"full":true,"backends":[{"name":"a/b:80","algorithm":"round_robin","endpoints":[{"address":"127.0.0.1","port":80,"weight":1}]}]}`)
	f.Add(true, `{"version":2,"full":false,"backends":[],"removed":["a/b:80"]}`)
	f.Add(false, `{"version":3,"full":true,"certificates":[{"id":"a/b","hosts":["a.io"],"cert":"x","key":"y"}]}`)
	f.Add(true, `{"version":1e309,"backends":[{"name":"os.execute('id')","endpoints":[{"address":"../../etc/passwd","port":-1}]}]}`)
	f.Add(true, `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`)
	f.Add(false, "\x00\xff{\"version\":")
	// One nginx for the whole run, owned by f so it outlives every input.
	n := dynamictest.New(f, dynamictest.Locations{"/x": "a/b:80"})
	n.Start(f)
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
	})
}
