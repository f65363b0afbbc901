//go:build linux

package netns

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestListenInside: a server listening inside the namespace answers from
// the root namespace over the veth, and is not reachable as a local address.
func TestListenInside(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root")
	}
	ns := Acquire(t)
	addr := ns.Addr(t)
	ln, err := ns.Listen("tcp", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "remote "+r.RemoteAddr)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(b), "remote "+ns.HostIP+":") {
		t.Errorf("answer %q, want the request to come from the veth's root side %s", b, ns.HostIP)
	}
	// Not a root-namespace address: listening on it here fails.
	if l, err := net.Listen("tcp", addr+":0"); err == nil {
		l.Close()
		t.Errorf("%s is assignable in the root namespace", addr)
	}
	if _, err := os.Stat(runDir + "/" + ns.Name); err != nil {
		t.Error(err)
	}
}
