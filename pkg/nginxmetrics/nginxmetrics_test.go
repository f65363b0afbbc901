package nginxmetrics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/model"
)

func TestParseStubStatus(t *testing.T) {
	raw := "Active connections: 3 \nserver accepts handled requests\n 16 15 31 \nReading: 0 Writing: 1 Waiting: 2 \n"
	got, err := parseStubStatus(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"active": 3, "accepted": 16, "handled": 15, "requests": 31, "reading": 0, "writing": 1, "waiting": 2}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if _, err := parseStubStatus("<html>404</html>"); err == nil {
		t.Errorf("a page that is not stub_status parsed")
	}
}

func TestMetricsLogCountsByLabels(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "metrics.log")
	reopened := 0
	m := NewLog(path, func() error { reopened++; return nil })
	line := func(backend, method, status, addr, ustatus, uheader string) string {
		return strings.Join([]string{"shop/web", "a.io", `/api\.x`, backend, method, status, "0.012", "0.010",
			"120", "300", addr, ustatus, uheader}, "\t") + "\n"
	}
	// Two ports of one Service are one series: Prometheus sees no port.
	write := func(s string) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	write(line("shop/web:80", "GET", "200", "10.0.0.1:8080", "200", "0.010") +
		line("shop/web:http", "GET", "200", "10.0.0.1:8080, 10.0.0.2:8080", "502, 200", "-, 0.010") +
		line("shop/web:80", "BREW", "503", "unix:/w/run/unavailable.sock", "503", "0.000") +
		"-\t-\t-\t-\tGET\t404\t0.000\t-\t10\t20\t-\t-\t-\n" + // no Ingress path: empty labels
		"junk line\n" + line("shop/web:80", "GET", "200", "10.0.0.1:8080", "200", "0.010")[:30]) // half a line
	s, err := m.Poll()
	if err != nil {
		t.Fatal(err)
	}
	r := route{namespace: "shop", ingress: "web", service: "web", host: "a.io", path: `/api\.x`}
	st := s.routes[r]
	if st == nil || st.requests[[2]string{"GET", "200"}] != 2 || st.requests[[2]string{"OTHER", "503"}] != 1 || st.duration[2] != 3 {
		t.Fatalf("route %v: %+v (all: %v)", r, st, s.routes)
	}
	if st := s.routes[route{}]; st == nil || st.requests[[2]string{"GET", "404"}] != 1 {
		t.Errorf("a request no Ingress path took: %+v", st)
	}
	if s.connErrs[[2]string{"shop", "web"}] != 1 || s.endpoints[[4]string{"shop", "web", "10.0.0.1:8080", "2xx"}] != 1 ||
		s.endpoints[[4]string{"shop", "web", "10.0.0.2:8080", "2xx"}] != 1 || len(s.endpoints) != 3 {
		t.Errorf("endpoints = %v, connect errors = %v", s.endpoints, s.connErrs)
	}
	// the rest of the half line arrives with the next flush
	write(line("shop/web:80", "GET", "200", "10.0.0.1:8080", "200", "0.010")[30:])
	if s, _ = m.Poll(); s.routes[r].requests[[2]string{"GET", "200"}] != 3 {
		t.Errorf("a line split across two writes was not counted once: %v", s.routes[r].requests)
	}

	// Rotation: past maxSize the file is renamed and nginx asked to reopen;
	// lines nginx still flushes into the old file count, then the new file.
	m.maxSize = 1
	write(line("shop/web:80", "GET", "200", "10.0.0.1:8080", "200", "0.010"))
	if _, err := m.Poll(); err != nil || reopened != 1 {
		t.Fatalf("rotation: err %v, reopened %d", err, reopened)
	}
	old, err := os.OpenFile(path+".1", os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("the rotated file: %v", err)
	}
	old.WriteString(line("shop/web:80", "GET", "200", "10.0.0.1:8080", "200", "0.010"))
	old.Close()
	write(line("shop/web:80", "GET", "200", "10.0.0.1:8080", "200", "0.010"))
	m.oldUntil = time.Now() // the drain period is over
	m.maxSize = 1 << 30
	if _, err := m.Poll(); err != nil {
		t.Fatal(err)
	}
	if s, _ = m.Poll(); s.routes[r].requests[[2]string{"GET", "200"}] != 6 {
		t.Errorf("after rotation: %v, want 6 GET 200", s.routes[r].requests)
	}
	if _, err := os.Stat(path + ".1"); err == nil {
		t.Errorf("the rotated file is still there after its drain period")
	}

	// Endpoints that left every backend lose their series.
	m.ForgetEndpoints(LiveEndpoints(&model.Model{Dynamic: model.Dynamic{Backends: []model.Backend{
		{Name: "shop/web:80", Endpoints: []model.Endpoint{{Address: "10.0.0.1", Port: 8080}}}}}}))
	s, _ = m.Poll()
	for k := range s.endpoints {
		if k[2] != "10.0.0.1:8080" {
			t.Errorf("series of a removed endpoint kept: %v", k)
		}
	}
	if len(s.endpoints) == 0 {
		t.Errorf("the live endpoint's series were dropped too")
	}
}
