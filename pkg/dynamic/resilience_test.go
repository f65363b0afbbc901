package dynamic

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/dynamic/dynamictest"
	"github.com/tidegate/tidegate/pkg/model"
)

func withEjection(b model.Backend, e model.Ejection) model.Backend {
	b.Ejection = &e
	return b
}

// load sends GET path from workers goroutines until stop is closed and
// returns the number of requests and of failed ones (status other than 200
// or a transport error).
func load(ng *dynamictest.Nginx, path string, workers int, stop <-chan struct{}) (total, failed *atomic.Int64, wait func()) {
	total, failed = new(atomic.Int64), new(atomic.Int64)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get("http://" + ng.HTTP + path)
				total.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	return total, failed, wg.Wait
}

func TestKilledBackendUnderLoadFailsNoRequest(t *testing.T) {
	ng, c := start(t)
	a, b := dynamictest.StartBackend(t, "a"), dynamictest.StartBackend(t, "b")
	push(t, c, backend(kibana, ep{b: a}, ep{b: b}))
	stop := make(chan struct{})
	total, failed, wait := load(ng, "/kibana", 8, stop)
	time.Sleep(200 * time.Millisecond)
	b.Kill()
	time.Sleep(400 * time.Millisecond)
	close(stop)
	wait()
	t.Logf("%d requests, b killed in the middle: %d failed", total.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed after a backend was killed, want 0", failed.Load(), total.Load())
	}
}

func TestEjectedPeerComesBack(t *testing.T) {
	ng, c := start(t)
	a, b := dynamictest.StartBackend(t, "a"), dynamictest.StartBackend(t, "b")
	push(t, c, withEjection(backend(kibana, ep{b: a}, ep{b: b}), model.Ejection{
		Failures: 2, FailureWindowMS: 10000, BaseEjectionMS: 700, MaxEjectionMS: 700, MaxEjectedPercent: 50}))
	b.Kill()
	if got := count(t, ng, "/kibana", 40); got["a"] != 40 {
		t.Fatalf("b dead: %v, want all on a", got)
	}
	// without ejection every other request would try b first
	if n := strings.Count(ng.ErrorLog(), "connect() failed"); n > 2*dynamictest.Workers {
		t.Fatalf("b was tried %d times, want it ejected after 2 failures per worker", n)
	}
	// b is back at once, but stays out until its ejection ends
	b.Restart(t)
	if got := count(t, ng, "/kibana", 20); got["a"] != 20 {
		t.Errorf("b restarted but ejected: %v, want all on a", got)
	}
	time.Sleep(800 * time.Millisecond)
	if got := count(t, ng, "/kibana", 40); got["b"] < 10 {
		t.Errorf("after the ejection: %v, want b back in rotation", got)
	}
}

// TestFailuresOutsideTheWindowDoNotEject: failed tries count only within
// the window of the first, as nginx's max_fails within fail_timeout; a
// dead peer that fails more slowly than that stays in rotation (and every
// request still gets its answer from the other peer).
func TestFailuresOutsideTheWindowDoNotEject(t *testing.T) {
	ng, c := start(t)
	a, b := dynamictest.StartBackend(t, "a"), dynamictest.StartBackend(t, "b")
	push(t, c, withEjection(backend(kibana, ep{b: a}, ep{b: b}), model.Ejection{
		Failures: 2, FailureWindowMS: 50, BaseEjectionMS: 60000, MaxEjectionMS: 60000, MaxEjectedPercent: 50}))
	b.Kill()
	for range 16 {
		if status, body := ng.Get(t, "/kibana"); status != 200 || body != "a" {
			t.Fatalf("b dead: got %d %q, want 200 a", status, body)
		}
		time.Sleep(120 * time.Millisecond)
	}
	// round-robin over two peers tries b first on every request of a worker
	// that still has it: ejection after 2 failures would stop at 2 per worker
	if n := strings.Count(ng.ErrorLog(), "connect() failed"); n <= 2*dynamictest.Workers {
		t.Errorf("b was tried %d times in 16 requests 120 ms apart, want more than %d: failures 120 ms apart must not add up within a 50 ms window",
			n, 2*dynamictest.Workers)
	}
}

func TestEjectionOn5xxAndSlowStart(t *testing.T) {
	ng, c := startObserving(t)
	a := dynamictest.StartBackend(t, "a")
	var broken atomic.Bool
	broken.Store(true)
	b := dynamictest.StartBackendFunc(t, "b", func(w http.ResponseWriter, _ *http.Request) {
		if broken.Load() {
			w.WriteHeader(500)
		}
		w.Write([]byte("b"))
	})
	push(t, c, withEjection(backend(kibana, ep{b: a}, ep{b: b}), model.Ejection{
		Consecutive5xx: 3, FailureWindowMS: 10000, BaseEjectionMS: 500, MaxEjectionMS: 500, SlowStartMS: 2000, MaxEjectedPercent: 50}))
	fails := 0
	for range 40 {
		if status, _ := ng.Get(t, "/kibana"); status != 200 {
			fails++
		}
	}
	// 5xx answers are not retried (proxy_next_upstream error timeout):
	// each worker sees three before it ejects b
	if fails > 3*dynamictest.Workers {
		t.Errorf("%d requests got b's 500 before it was ejected, want at most %d", fails, 3*dynamictest.Workers)
	}
	broken.Store(false)
	time.Sleep(600 * time.Millisecond)
	// slow start: b takes a growing share, well below half at first
	early := count(t, ng, "/kibana", 100)
	time.Sleep(2100 * time.Millisecond)
	late := count(t, ng, "/kibana", 100)
	t.Logf("slow start: first 100 requests %v, after it %v", early, late)
	if early["b"] == 0 || early["b"] >= 40 || !near(late["b"], 50) {
		t.Errorf("slow start: %v then %v, want b between 1 and 39 then 50±10 %%", early, late)
	}
}

func TestLastPeerIsNeverEjected(t *testing.T) {
	ng, c := start(t)
	a := dynamictest.StartBackend(t, "a")
	push(t, c, withEjection(backend(kibana, ep{b: a}), model.Ejection{
		Failures: 1, FailureWindowMS: 10000, BaseEjectionMS: 60000, MaxEjectionMS: 60000, MaxEjectedPercent: 100}))
	a.Kill()
	for range 5 {
		ng.Get(t, "/kibana")
	}
	a.Restart(t)
	if status, body := ng.Get(t, "/kibana"); status != 200 || body != "a" {
		t.Errorf("the only peer came back: got %d %q, want 200 a (it must not be ejected)", status, body)
	}
}
