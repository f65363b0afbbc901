package dynamic

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/dynamic/dynamictest"
	"github.com/tidegate/tidegate/pkg/model"
)

// bigBackend has n endpoints on 10.0.0.0/8 (never connected to).
func bigBackend(name, algo string, n int) model.Backend {
	b := model.Backend{Name: name, Algorithm: algo, Endpoints: make([]model.Endpoint, 0, n)}
	for i := range n {
		b.Endpoints = append(b.Endpoints, model.Endpoint{
			Address: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Port: 8080, Weight: 1})
	}
	return b
}

// latencies sends GET path from workers goroutines until stop is closed and
// returns every request's start time and latency.
type sample struct {
	at  time.Time
	dur time.Duration
}

func latencies(t *testing.T, ng *dynamictest.Nginx, path string, workers int, stop <-chan struct{}) func() []sample {
	var mu sync.Mutex
	var out []sample
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// one connection per goroutine, spread over both workers
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				at := time.Now()
				resp, err := c.Get("http://" + ng.HTTP + path)
				d := time.Since(at)
				if err != nil {
					t.Errorf("GET %s: %v", path, err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("GET %s: %d", path, resp.StatusCode)
					return
				}
				mu.Lock()
				out = append(out, sample{at, d})
				mu.Unlock()
			}
		}()
	}
	return func() []sample { wg.Wait(); return out }
}

func maxIn(ss []sample, from, to time.Time) (max time.Duration, n int) {
	for _, s := range ss {
		if !s.at.Before(from) && s.at.Before(to) {
			n++
			if s.dur > max {
				max = s.dur
			}
		}
	}
	return max, n
}

func p99(ss []sample) time.Duration {
	ds := make([]time.Duration, len(ss))
	for i, s := range ss {
		ds[i] = s.dur
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	if len(ds) == 0 {
		return 0
	}
	return ds[len(ds)*99/100]
}

// TestPush10kEndpoints measures a push of one 10,000-endpoint backend while
// other requests flow: the time nginx takes to accept it, and the worst
// latency of the concurrent requests (the workers' rebuild runs in their
// event loops). It reports figures and asserts no timing.
func TestPush10kEndpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	ng, c := startObserving(t) // ewma is among the algorithms
	a := dynamictest.StartBackend(t, "a")
	push(t, c, backend(kibana, ep{b: a}))
	for _, algo := range []string{model.AlgorithmRoundRobin, model.AlgorithmEWMA, model.AlgorithmCHash} {
		big := bigBackend("default/big:8080", algo, 10000)
		stop := make(chan struct{})
		collect := latencies(t, ng, "/kibana", 4, stop)
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		res, err := c.PushBackendsResult(ctx(t), false, []model.Backend{big}, nil)
		apply := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // the workers' timers rebuild it meanwhile
		close(stop)
		ss := collect()
		before, nb := maxIn(ss, start.Add(-300*time.Millisecond), start)
		during, nd := maxIn(ss, start, start.Add(apply+300*time.Millisecond))
		t.Logf("%s: push of 10,000 endpoints applied in %v (changed %d); concurrent requests: max %v over %d before, max %v over %d during and 300 ms after (p99 overall %v)",
			algo, apply.Round(time.Millisecond), res.Changed, before.Round(100*time.Microsecond), nb,
			during.Round(100*time.Microsecond), nd, p99(ss).Round(100*time.Microsecond))
		// unchanged re-push: nothing is rebuilt
		start = time.Now()
		res, err = c.PushBackendsResult(ctx(t), false, []model.Backend{big}, nil)
		if err != nil || res.Changed != 0 {
			t.Fatalf("same backend again: %+v %v, want 0 changes", res, err)
		}
		t.Logf("%s: unchanged re-push answered in %v", algo, time.Since(start).Round(time.Millisecond))
		if _, err := c.PushBackendsResult(ctx(t), false, nil, []string{big.Name}); err != nil {
			t.Fatal(err)
		}
	}
}
