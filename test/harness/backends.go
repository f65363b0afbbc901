package harness

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/tidegate/tidegate/pkg/echo"
	"github.com/tidegate/tidegate/test/netns"
)

// Backends are echo servers on distinct loopback addresses sharing one
// port, as endpoints of one EndpointSlice port are.
type Backends struct {
	Port  int
	Addrs []string // "127.0.0.x"
	stop  map[string]context.CancelFunc
	mu    sync.Mutex
}

var nextIP struct {
	sync.Mutex
	n int
}

// StartBackends starts one echo server per name, each on its own loopback
// address and all on the same port; the server answers with its name.
// They stop at the end of t.
func StartBackends(t testing.TB, names ...string) *Backends {
	t.Helper()
	for attempt := 0; attempt < 20; attempt++ {
		port := FreePort(t)
		b := &Backends{Port: port, stop: map[string]context.CancelFunc{}}
		ok := true
		for _, name := range names {
			nextIP.Lock()
			nextIP.n++
			ip := fmt.Sprintf("127.0.%d.%d", 10+nextIP.n/250, 1+nextIP.n%250)
			nextIP.Unlock()
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			ctx, cancel := context.WithCancel(context.Background())
			go echo.ServeListener(ctx, ln, name)
			b.Addrs = append(b.Addrs, ip)
			b.stop[ip] = cancel
		}
		if !ok {
			b.Close()
			continue
		}
		t.Cleanup(b.Close)
		return b
	}
	t.Fatal("could not find a port free on several loopback addresses")
	return nil
}

// Kill stops the backend at ip abruptly.
func (b *Backends) Kill(ip string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.stop[ip]; c != nil {
		c()
		delete(b.stop, ip)
	}
}

// Close stops every backend; safe to repeat.
func (b *Backends) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ip, c := range b.stop {
		c()
		delete(b.stop, ip)
	}
}

// HostBackend is an echo server on its own address inside the test run's
// network namespace (see test/netns): the API server refuses loopback
// addresses in EndpointSlices, and test traffic may only go to hosts the
// run itself created.
type HostBackend struct {
	Name, IP string
	Port     int
}

// StartHostBackends starts one echo server per name, each on its own
// address of the test namespace and all on the same port (as the endpoints
// of one EndpointSlice port are). They stop at the end of t.
func StartHostBackends(t testing.TB, names ...string) []HostBackend {
	t.Helper()
	ns := netns.Acquire(t)
	var out []HostBackend
	port := 0
	for _, name := range names {
		ip := ns.Addr(t)
		ln, err := ns.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("listen on %s in netns %s: %v", ip, ns.Name, err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { echo.ServeListener(ctx, ln, name); close(done) }()
		t.Cleanup(func() { cancel(); <-done; ns.Release(ip) })
		out = append(out, HostBackend{Name: name, IP: ip, Port: port})
	}
	return out
}
