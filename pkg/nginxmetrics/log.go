package nginxmetrics

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Log counts requests from the log nginx writes for them
// (nginx.tmpl, log_format tidegate_metrics): one tab-separated line per
// request, buffered by nginx (one write per 64 KiB or per second), so the
// request path pays for formatting a line in C and nothing else. Lua used
// to count in the log phase; that cost a fifth of the proxy's CPU per
// request (BENCHMARKS.md §1).
//
// The file is read from where the last read stopped. Past maxSize it is
// rotated: renamed, nginx told to reopen its logs (SIGUSR1), and the
// renamed file read to its end once the workers have moved on.
type Log struct {
	path    string
	reopen  func() error
	maxSize int64

	mu      sync.Mutex
	f       *os.File
	off     int64
	partial []byte
	// old is the renamed file still being drained, until oldUntil.
	old      *os.File
	oldOff   int64
	oldUntil time.Time
	counts   *Snapshot
	lines    uint64
	bad      uint64
	buf      []byte // read buffer, kept between reads
}

// rotateDrain is how long the renamed file is still read after nginx was
// told to reopen: workers reopen at their next event, and flush what they
// buffered into the old file first.
const rotateDrain = 3 * time.Second

// NewLog reads the metrics log at path; reopen asks nginx to reopen its
// logs after the file was rotated.
func NewLog(path string, reopen func() error) *Log {
	m := &Log{path: path, reopen: reopen, maxSize: 32 << 20, counts: newSnapshot()}
	// Lines of an earlier run (tidegate restarted on the same working
	// directory) are not counted again.
	if st, err := os.Stat(path); err == nil {
		m.off = st.Size()
	}
	return m
}

func newSnapshot() *Snapshot {
	return &Snapshot{routes: map[route]*routeStats{}, endpoints: map[[4]string]float64{}, connErrs: map[[2]string]float64{}}
}

// errMetricsOff is what a nil Log (--enable-metrics=false: nginx
// writes no metrics line) reports where counts were expected.
var errMetricsOff = errors.New("request metrics are off (--enable-metrics=false)")

// Read counts what nginx wrote since the last call and rotates the file
// when it is big.
func (m *Log) Read() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.readNew()
}

// Poll reads like Read and returns a copy of the counts so far.
// A nil log has no counts and says so (errMetricsOff).
func (m *Log) Poll() (*Snapshot, error) {
	if m == nil {
		return newSnapshot(), errMetricsOff
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	err := m.readNew()
	return m.counts.clone(), err
}

func (m *Log) readNew() error {
	if m.old != nil {
		if err := m.drain(m.old, &m.oldOff); err != nil {
			return err
		}
		if time.Now().After(m.oldUntil) {
			m.old.Close()
			m.old = nil
			m.partial = m.partial[:0]
			_ = os.Remove(m.path + ".1")
		}
	}
	if m.f == nil {
		f, err := os.Open(m.path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // nginx has not written yet
		}
		if err != nil {
			return err
		}
		m.f = f
		if m.old == nil {
			m.partial = m.partial[:0]
		}
	}
	if cur, err := os.Stat(m.path); err == nil && m.old == nil {
		if mine, err := m.f.Stat(); err == nil && !os.SameFile(cur, mine) {
			// replaced behind our back (not by a rotation): read the new one
			m.f.Close()
			m.f, m.off = nil, 0
			m.partial = m.partial[:0]
			return m.readNew()
		}
	}
	if st, err := m.f.Stat(); err == nil && st.Size() < m.off {
		m.off = 0 // truncated by someone else: start over
		m.partial = m.partial[:0]
	}
	if m.old != nil {
		return nil // the current file waits until the old one is done
	}
	if err := m.drain(m.f, &m.off); err != nil {
		return err
	}
	if m.off < m.maxSize {
		return nil
	}
	rotated := m.path + ".1"
	if err := os.Rename(m.path, rotated); err != nil {
		return err
	}
	if err := m.reopen(); err != nil {
		// nginx keeps writing into the renamed file: keep reading it
		// there, under its new name, and try again next time
		_ = os.Rename(rotated, m.path)
		return err
	}
	m.old, m.oldOff, m.oldUntil = m.f, m.off, time.Now().Add(rotateDrain)
	m.f, m.off = nil, 0
	return nil
}

// drain reads f from *off to its end, counts the complete lines and
// moves *off.
func (m *Log) drain(f *os.File, off *int64) error {
	if m.buf == nil {
		m.buf = make([]byte, 256<<10)
	}
	buf := m.buf
	for {
		n, err := f.ReadAt(buf, *off)
		*off += int64(n)
		m.consume(buf[:n])
		if err == io.EOF || n == 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (m *Log) consume(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			m.partial = append(m.partial, b...)
			return
		}
		line := b[:i]
		if len(m.partial) > 0 {
			m.partial = append(m.partial, line...)
			line = m.partial
		}
		m.count(line)
		m.partial = m.partial[:0]
		b = b[i+1:]
	}
}

var standardMethods = map[string]string{
	"GET": "GET", "HEAD": "HEAD", "POST": "POST", "PUT": "PUT", "DELETE": "DELETE",
	"PATCH": "PATCH", "OPTIONS": "OPTIONS", "CONNECT": "CONNECT", "TRACE": "TRACE",
}

// The fields of log_format tidegate_metrics.
const (
	fIngress = iota
	fVHost
	fPath
	fBackend
	fMethod
	fStatus
	fRequestTime
	fUpstreamTime
	fRequestLength
	fBytesSent
	fUpstreamAddr
	fUpstreamStatus
	fUpstreamHeader
	nFields
)

func (m *Log) count(line []byte) {
	var f [nFields]string
	s := string(line)
	for i := 0; i < nFields-1; i++ {
		j := strings.IndexByte(s, '\t')
		if j < 0 {
			m.bad++
			return
		}
		f[i], s = s[:j], s[j+1:]
	}
	f[nFields-1] = s
	// Requests no Ingress path took (a server's fallback location, the
	// default server) count with empty labels, as they always have.
	m.lines++
	r := newRoute(logValue(f[fIngress]), logValue(f[fVHost]), logValue(f[fPath]), logValue(f[fBackend]))
	st := m.counts.routes[r]
	if st == nil {
		st = &routeStats{requests: map[[2]string]float64{}}
		m.counts.routes[r] = st
	}
	method := standardMethods[f[fMethod]]
	if method == "" {
		method = "OTHER"
	}
	st.requests[[2]string{method, f[fStatus]}]++
	rt, _ := strconv.ParseFloat(f[fRequestTime], 64)
	st.duration[bucketOf(rt)]++
	st.durSum += rt
	if ut, ok := sumTimes(f[fUpstreamTime]); ok {
		st.upstream[bucketOf(ut)]++
		st.upSum += ut
		st.hasUpTimes = true
	}
	if v, err := strconv.ParseFloat(f[fRequestLength], 64); err == nil {
		st.bytesIn += v
	}
	if v, err := strconv.ParseFloat(f[fBytesSent], 64); err == nil {
		st.bytesOut += v
	}
	if backend := logValue(f[fBackend]); backend != "" {
		m.countEndpoints(backend, f[fUpstreamAddr], f[fUpstreamStatus], f[fUpstreamHeader])
	}
}

// countEndpoints adds one outcome per try: the status class of the answer,
// "timeout" (504 without a header), or "error" (no answer).
func (m *Log) countEndpoints(backend, addrs, statuses, headers string) {
	ns, svc := SplitBackend(backend)
	for addrs != "" {
		var addr, status, header string
		addr, addrs = nextUpstreamField(addrs)
		status, statuses = nextUpstreamField(statuses)
		header, headers = nextUpstreamField(headers)
		if addr == "-" || strings.HasPrefix(addr, "unix:") {
			continue // no try, or the 503 answered for a backend without endpoints
		}
		outcome := "error"
		switch {
		case header != "-" && header != "" && len(status) == 3 && status[0] >= '1' && status[0] <= '5':
			outcome = status[:1] + "xx"
		case status == "504":
			outcome = "timeout"
		}
		m.counts.endpoints[[4]string{ns, svc, addr, outcome}]++
		if outcome == "error" {
			m.counts.connErrs[[2]string{ns, svc}]++
		}
	}
}

// nextUpstreamField splits nginx's upstream lists: ", " between tries of
// one upstream group, " : " between groups (after an internal redirect).
func nextUpstreamField(s string) (field, rest string) {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' && i+1 < len(s) && s[i+1] == ' ' {
			return s[:i], s[i+2:]
		}
		if s[i] == ' ' && i+2 < len(s) && s[i+1] == ':' && s[i+2] == ' ' {
			return s[:i], s[i+3:]
		}
	}
	return s, ""
}

// sumTimes adds the per-try times of an $upstream_*_time value.
func sumTimes(s string) (float64, bool) {
	total, any := 0.0, false
	for s != "" {
		var f string
		f, s = nextUpstreamField(s)
		if v, err := strconv.ParseFloat(f, 64); err == nil {
			total += v
			any = true
		}
	}
	return total, any
}

func bucketOf(v float64) int {
	for i, ub := range latencyBuckets {
		if v <= ub {
			return i
		}
	}
	return len(latencyBuckets)
}

// logValue maps the "-" nginx writes for an empty value to "". The line is
// written with escape=none: its values are names tidegate checked, numbers
// and addresses, so none holds a tab, a newline or a byte to decode.
func logValue(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

// ForgetEndpoints drops the per-endpoint series of endpoints that are no
// longer in any backend (pods come and go: kept forever, their series would
// grow without bound). live reports whether "ns/svc" has endpoint addr.
func (m *Log) ForgetEndpoints(live func(ns, svc, addr string) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.counts.endpoints {
		if !live(k[0], k[1], k[2]) {
			delete(m.counts.endpoints, k)
		}
	}
}

// clone copies the counts, so a scrape can emit them without the lock.
func (s *Snapshot) clone() *Snapshot {
	c := newSnapshot()
	for r, st := range s.routes {
		cp := *st
		cp.requests = make(map[[2]string]float64, len(st.requests))
		for k, v := range st.requests {
			cp.requests[k] = v
		}
		c.routes[r] = &cp
	}
	for k, v := range s.endpoints {
		c.endpoints[k] = v
	}
	for k, v := range s.connErrs {
		c.connErrs[k] = v
	}
	return c
}
