package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/echo"
)

// loadOptions shape a load run.
type loadOptions struct {
	// Rate is requests per second, alternating between a keepalive client
	// and a new connection per request. Zero: Burst requests at once.
	Rate  int
	Burst int
	// Every SlowEvery-th request asks the backend to sleep Slow first.
	SlowEvery int
	Slow      time.Duration
}

// load sends GET requests to one host through tidegate until stopped.
type load struct {
	t       testing.TB
	opts    loadOptions
	url     string
	host    string
	keep    *http.Client
	fresh   *http.Client
	stopped chan struct{}
	running sync.WaitGroup
	mu      sync.Mutex
	res     loadResult
}

// loadResult counts what a load run saw.
type loadResult struct {
	Total     int
	Keepalive int // sent by the keepalive client
	Reused    int // ... on a connection that had served before
	NewConn   int // sent on a connection of their own
	// ClientRetries are requests Go's transport sent twice, because the
	// kept-alive connection it first chose was closed by the server
	// before any answer (allowed for idempotent requests, RFC 9112 9.3.1).
	ClientRetries int
	Slow, SlowOK  int
	Outcomes      map[string]int // "200", "502", "error: connection refused"...
	ByPod         map[string]int
	Failures      []string // the first few, with times
	Retried       []string // the first few client retries, with times
	Start         time.Time
	End           time.Time
	LastDone      time.Time
}

func startLoad(t testing.TB, tg *tidegate, host string, opts loadOptions) *load {
	l := &load{t: t, opts: opts, host: host, url: fmt.Sprintf("http://127.0.0.1:%d/", tg.HTTPPort),
		keep:    &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32, IdleConnTimeout: time.Minute}},
		fresh:   &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		stopped: make(chan struct{}),
		res:     loadResult{Outcomes: map[string]int{}, ByPod: map[string]int{}, Start: time.Now()}}
	l.running.Add(1)
	go func() {
		defer l.running.Done()
		if opts.Rate == 0 {
			for i := range opts.Burst {
				l.running.Add(1)
				go l.one(i)
			}
			return
		}
		tick := time.NewTicker(time.Second / time.Duration(opts.Rate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-l.stopped:
				return
			case <-tick.C:
			}
			l.running.Add(1)
			go l.one(i)
		}
	}()
	t.Cleanup(func() { l.stop() })
	return l
}

// one sends request number i and records its outcome.
func (l *load) one(i int) {
	defer l.running.Done()
	keep := i%2 == 0
	slow := l.opts.SlowEvery > 0 && i%l.opts.SlowEvery == 0
	url := l.url
	if slow {
		url += "?sleep=" + l.opts.Slow.String()
	}
	conns, reused := 0, false
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { conns++; reused = info.Reused }})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Host = l.host
	c := l.fresh
	if keep {
		c = l.keep
	}
	sent := time.Now()
	resp, err := c.Do(req)
	outcome, pod := "", ""
	if err != nil {
		outcome = "error: " + errClass(err)
	} else {
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		outcome = fmt.Sprint(resp.StatusCode)
		if rerr != nil {
			outcome = "error: body: " + errClass(rerr)
		}
		var rep echo.Reply
		if json.Unmarshal(body, &rep) == nil {
			pod = rep.Name
		}
	}
	done := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &l.res
	r.Total++
	if keep {
		r.Keepalive++
		if reused && conns == 1 {
			r.Reused++
		}
	} else {
		r.NewConn++
	}
	if conns > 1 {
		r.ClientRetries++
		if len(r.Retried) < 10 {
			r.Retried = append(r.Retried, fmt.Sprintf("%s→%s %s: %s", sent.Format("15:04:05.000"), done.Format("15:04:05.000"), url, outcome))
		}
	}
	r.Outcomes[outcome]++
	if pod != "" {
		r.ByPod[pod]++
	}
	if slow {
		r.Slow++
		if outcome == "200" {
			r.SlowOK++
		}
	}
	if outcome != "200" && len(r.Failures) < 10 {
		kind := "new connection"
		if keep {
			kind = fmt.Sprintf("keepalive (reused %v)", reused)
		}
		r.Failures = append(r.Failures, fmt.Sprintf("%s→%s %s %s: %s", sent.Format("15:04:05.000"), done.Format("15:04:05.000"), kind, url, outcome))
	}
	if done.After(r.LastDone) {
		r.LastDone = done
	}
}

// stop ends the load, waits for every request in flight, and returns the
// counts. Safe to call twice.
func (l *load) stop() *loadResult {
	select {
	case <-l.stopped:
	default:
		close(l.stopped)
	}
	l.running.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.res.End.IsZero() {
		l.res.End = time.Now()
	}
	l.keep.CloseIdleConnections()
	r := l.res
	return &r
}

func errClass(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return err.Error()
}

// failed counts the requests that did not get a 200.
func (r *loadResult) failed() int {
	n := 0
	for k, v := range r.Outcomes {
		if k != "200" {
			n += v
		}
	}
	return n
}

// summary is one line: counts, rate and the outcome distribution.
func (r *loadResult) summary() string {
	var outs []string
	for k, v := range r.Outcomes {
		outs = append(outs, fmt.Sprintf("%s×%d", k, v))
	}
	sort.Strings(outs)
	secs := r.End.Sub(r.Start).Seconds()
	return fmt.Sprintf("%d requests in %.1fs (%d keepalive of which %d on reused connections, %d on new connections, %d slow; %d client retries): %s; failed %d",
		r.Total, secs, r.Keepalive, r.Reused, r.NewConn, r.Slow, r.ClientRetries, strings.Join(outs, " "), r.failed())
}

// detail is summary plus the per-pod distribution and the first failures.
func (r *loadResult) detail() string {
	var pods []string
	for k, v := range r.ByPod {
		pods = append(pods, fmt.Sprintf("%s:%d", k, v))
	}
	sort.Strings(pods)
	s := r.summary() + "\n    by pod: " + strings.Join(pods, " ")
	if len(r.Failures) > 0 {
		s += "\n    first failures:\n      " + strings.Join(r.Failures, "\n      ")
	}
	if len(r.Retried) > 0 {
		s += "\n    sent again by the client on a new connection (the kept-alive one was closed under it):\n      " + strings.Join(r.Retried, "\n      ")
	}
	return s
}

func (r *loadResult) assertNoFailure(t *testing.T) {
	t.Helper()
	if n := r.failed(); n > 0 {
		t.Errorf("%d of %d requests failed: %s", n, r.Total, r.detail())
	}
	if r.Total == 0 {
		t.Error("no request was sent")
	}
}

// merge adds o's counts to a copy of r.
func (r *loadResult) merge(o *loadResult) *loadResult {
	m := *r
	m.Outcomes, m.ByPod = map[string]int{}, map[string]int{}
	for _, x := range []*loadResult{r, o} {
		for k, v := range x.Outcomes {
			m.Outcomes[k] += v
		}
		for k, v := range x.ByPod {
			m.ByPod[k] += v
		}
	}
	m.Total, m.Keepalive, m.Reused, m.NewConn = r.Total+o.Total, r.Keepalive+o.Keepalive, r.Reused+o.Reused, r.NewConn+o.NewConn
	m.ClientRetries, m.Slow, m.SlowOK = r.ClientRetries+o.ClientRetries, r.Slow+o.Slow, r.SlowOK+o.SlowOK
	if o.End.After(m.End) {
		m.End = o.End
	}
	if o.Start.Before(m.Start) {
		m.Start = o.Start
	}
	return &m
}
