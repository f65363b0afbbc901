package dynamic

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/dynamic/dynamictest"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/tlsutil"
)

const kibana = "default/kibana:5601"

// start runs nginx with /kibana proxied to the kibana backend and /other to
// a backend that is never pushed. Like tidegate's nginx.conf without an
// ewma backend, it has no Lua log phase.
func start(t *testing.T) (*dynamictest.Nginx, *Client) {
	t.Helper()
	t.Parallel()
	n := dynamictest.New(t, dynamictest.Locations{"/kibana": kibana, "/other": "default/other:80"})
	n.Start(t)
	return n, New(n.Socket, n.Token)
}

// startObserving is start with the Lua log phase, which nginx.conf has
// while a backend balances by ewma or ejects on 5xx.
func startObserving(t *testing.T) (*dynamictest.Nginx, *Client) {
	t.Helper()
	t.Parallel()
	n := dynamictest.New(t, dynamictest.Locations{"/kibana": kibana, "/other": "default/other:80"}).WithLogPhase(t)
	n.Start(t)
	return n, New(n.Socket, n.Token)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

type ep struct {
	b        *dynamictest.Backend
	weight   int
	draining bool
}

func backend(name string, eps ...ep) model.Backend {
	b := model.Backend{Name: name, Algorithm: model.DefaultAlgorithm, Endpoints: []model.Endpoint{}}
	for _, e := range eps {
		w := e.weight
		if w == 0 {
			w = 1
		}
		b.Endpoints = append(b.Endpoints, model.Endpoint{Address: e.b.Addr, Port: e.b.Port, Weight: w, Draining: e.draining})
	}
	return b
}

func push(t *testing.T, c *Client, bs ...model.Backend) {
	t.Helper()
	if err := c.PushBackends(ctx(t), true, bs, nil); err != nil {
		t.Fatal(err)
	}
}

// count sends n requests to path and counts the answers by body; any status
// other than 200 fails the test.
func count(t *testing.T, ng *dynamictest.Nginx, path string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		status, body := ng.Get(t, path)
		if status != 200 {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		got[body]++
	}
	return got
}

func near(got, want int) bool {
	return got >= want-want/10 && got <= want+want/10
}

func TestRoundRobinIsEven(t *testing.T) {
	ng, c := start(t)
	a, b, d := dynamictest.StartBackend(t, "a"), dynamictest.StartBackend(t, "b"), dynamictest.StartBackend(t, "d")
	push(t, c, backend(kibana, ep{b: a}, ep{b: b}, ep{b: d}))
	got := count(t, ng, "/kibana", 300)
	for _, name := range []string{"a", "b", "d"} {
		if !near(got[name], 100) {
			t.Errorf("%s got %d of 300 requests, want 100±10%%: %v", name, got[name], got)
		}
	}
}

func TestWeightsAreRespected(t *testing.T) {
	ng, c := start(t)
	a, b := dynamictest.StartBackend(t, "a"), dynamictest.StartBackend(t, "b")
	push(t, c, backend(kibana, ep{b: a, weight: 3}, ep{b: b, weight: 1}))
	got := count(t, ng, "/kibana", 300)
	if !near(got["a"], 225) || !near(got["b"], 75) {
		t.Errorf("weights 3:1 over 300 requests gave %v, want a=225 b=75 ±10%%", got)
	}
}

func TestPushMovesTrafficWithoutNewWorkers(t *testing.T) {
	ng, c := start(t)
	a, b := dynamictest.StartBackend(t, "a"), dynamictest.StartBackend(t, "b")
	pids := ng.WorkerPIDs()
	push(t, c, backend(kibana, ep{b: a}))
	if got := count(t, ng, "/kibana", 20); got["a"] != 20 {
		t.Fatalf("before: %v, want all on a", got)
	}
	push(t, c, backend(kibana, ep{b: b}))
	// no sleep: the first request after the push must already see it
	if got := count(t, ng, "/kibana", 20); got["b"] != 20 {
		t.Fatalf("after: %v, want all on b", got)
	}
	if now := ng.WorkerPIDs(); !slices.Equal(pids, now) {
		t.Errorf("worker pids changed from %v to %v: nginx reloaded", pids, now)
	}
}

func TestNoEndpointsIs503(t *testing.T) {
	ng, c := start(t)
	a := dynamictest.StartBackend(t, "a")
	if status, _ := ng.Get(t, "/other"); status != 503 {
		t.Errorf("unknown backend: got %d, want 503", status)
	}
	push(t, c, backend(kibana))
	if status, _ := ng.Get(t, "/kibana"); status != 503 {
		t.Errorf("zero endpoints: got %d, want 503", status)
	}
	push(t, c, backend(kibana, ep{b: a}))
	if status, body := ng.Get(t, "/kibana"); status != 200 || body != "a" {
		t.Errorf("after pushing an endpoint: got %d %q, want 200 a", status, body)
	}
}

func TestDrainingOnlyWhenNoReadyEndpoint(t *testing.T) {
	ng, c := start(t)
	a, b, d := dynamictest.StartBackend(t, "a"), dynamictest.StartBackend(t, "b"), dynamictest.StartBackend(t, "d")
	push(t, c, backend(kibana, ep{b: a}, ep{b: b, draining: true}))
	if got := count(t, ng, "/kibana", 20); got["a"] != 20 {
		t.Errorf("one ready, one draining: %v, want all on a", got)
	}
	push(t, c, backend(kibana, ep{b: b, draining: true}, ep{b: d, draining: true}))
	if got := count(t, ng, "/kibana", 20); got["b"] < 8 || got["d"] < 8 {
		t.Errorf("all draining: %v, want both used", got)
	}
}

func TestRetryAvoidsDeadEndpoint(t *testing.T) {
	ng, c := start(t)
	a, b := dynamictest.StartBackend(t, "a"), dynamictest.StartBackend(t, "b")
	push(t, c, backend(kibana, ep{b: a}, ep{b: b}))
	count(t, ng, "/kibana", 10) // warm keepalive connections to both
	b.Kill()
	if got := count(t, ng, "/kibana", 100); got["a"] != 100 {
		t.Errorf("with b dead: %v, want all 100 on a", got)
	}
	// weights that keep choosing the dead peer must not make a retry
	// pick it again
	push(t, c, backend(kibana, ep{b: a}, ep{b: b, weight: 5}))
	if got := count(t, ng, "/kibana", 50); got["a"] != 50 {
		t.Errorf("with heavy b dead: %v, want all 50 on a", got)
	}
}

func TestProtocolErrors(t *testing.T) {
	ng, _ := start(t)
	v := time.Now().UnixMilli()
	doc := func(s string) []byte { return []byte(strings.ReplaceAll(s, "V", fmt.Sprint(v))) }
	good := `{"version":V,"full":true,"backends":[{"name":"a","algorithm":"round_robin","endpoints":[{"address":"10.0.0.1","port":80,"weight":1}]}],"removed":[]}`
	if status, body := ng.Control(t, "POST", BackendsPath, doc(good)); status != 200 {
		t.Fatalf("good push: %d %s", status, body)
	}
	tests := map[string]struct {
		method, path, body string
		status             int
		reason             string
	}{
		"GET":                 {"GET", BackendsPath, "", 405, "use POST"},
		"bad JSON":            {"POST", BackendsPath, `{"version":`, 400, "invalid JSON"},
		"empty body":          {"POST", BackendsPath, ``, 400, "empty"},
		"stale version":       {"POST", BackendsPath, good, 409, "not newer"},
		"unknown key":         {"POST", BackendsPath, `{"version":1,"x":1}`, 400, `unknown key "x"`},
		"version not integer": {"POST", BackendsPath, `{"version":1.5}`, 400, "version"},
		"hostname address":    {"POST", BackendsPath, `{"version":1,"backends":[{"name":"a","endpoints":[{"address":"example.com","port":80}]}]}`, 400, "not an IPv4 or IPv6"},
		"port 0":              {"POST", BackendsPath, `{"version":1,"backends":[{"name":"a","endpoints":[{"address":"::1","port":0}]}]}`, 400, "port"},
		"weight 1001":         {"POST", BackendsPath, `{"version":1,"backends":[{"name":"a","endpoints":[{"address":"1.2.3.4","port":1,"weight":1001}]}]}`, 400, "weight"},
		"unknown algorithm":   {"POST", BackendsPath, `{"version":1,"backends":[{"name":"a","algorithm":"least_conn"}]}`, 400, "unknown algorithm"},
		"control char":        {"POST", BackendsPath, `{"version":1,"backends":[{"name":"a\nb"}]}`, 400, "control character"},
		"listed twice":        {"POST", BackendsPath, `{"version":1,"backends":[{"name":"a"},{"name":"a"}]}`, 400, "listed twice"},
		"backends not array":  {"POST", BackendsPath, `{"version":1,"backends":{"a":1}}`, 400, "backends: must be an array"},
		"bad wildcard":        {"POST", CertificatesPath, `{"version":1,"certificates":[{"id":"x","hosts":["a.*.b"],"cert":"-----BEGIN ","key":"-----BEGIN "}]}`, 400, "not a DNS name"},
		"other path":          {"POST", "/configuration/other", `{}`, 404, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			status, body := ng.Control(t, tc.method, tc.path, doc(tc.body))
			var ans struct{ Error string }
			if status != 404 {
				if err := json.Unmarshal([]byte(body), &ans); err != nil || ans.Error == "" {
					t.Errorf("answer is not a JSON error: %s", body)
				}
			}
			if status != tc.status || !strings.Contains(ans.Error, tc.reason) {
				t.Errorf("got %d %s, want %d with %q", status, body, tc.status, tc.reason)
			}
		})
	}
	t.Run("oversize", func(t *testing.T) {
		// Only the headers: nginx refuses on Content-Length alone.
		conn, err := net.Dial("unix", ng.Socket)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\n%s: %s\r\nContent-Length: %d\r\n\r\n", CertificatesPath, TokenHeader, ng.Token, 17<<20)
		buf := make([]byte, 64)
		n, _ := conn.Read(buf)
		if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 413") {
			t.Errorf("got %q, want 413", buf[:n])
		}
	})
}

func TestClientReportsRejections(t *testing.T) {
	_, c := start(t)
	err := c.PushBackends(ctx(t), true, []model.Backend{{Name: "a", Algorithm: "round_robin",
		Endpoints: []model.Endpoint{{Address: "not-an-ip", Port: 80, Weight: 1}}}}, nil)
	var rej *RejectedError
	if !errors.As(err, &rej) || !strings.Contains(rej.Rejected["a"], "not-an-ip") {
		t.Fatalf("got %v, want backend a left out, naming the address", err)
	}
	if !strings.Contains(err.Error(), "nginx left out 1 item(s) it could not take: a") {
		t.Errorf("error %q does not name what was left out", err)
	}
}

func TestClientOvertakesNewerStoredVersion(t *testing.T) {
	ng, c := start(t)
	a := dynamictest.StartBackend(t, "a")
	// a previous controller whose clock ran an hour ahead
	ahead := New(ng.Socket, ng.Token)
	ahead.version = time.Now().Add(time.Hour).UnixMilli()
	push(t, ahead, backend(kibana))
	res, err := c.PushBackendsResult(ctx(t), false, []model.Backend{backend(kibana, ep{b: a})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version <= ahead.version || res.Changed != 1 {
		t.Errorf("got %+v, want a version above %d and 1 change", res, ahead.version)
	}
	if status, body := ng.Get(t, "/kibana"); status != 200 || body != "a" {
		t.Errorf("got %d %q, want 200 a", status, body)
	}
}

func TestClientWaitsForNginxToStart(t *testing.T) {
	t.Parallel()
	ng := dynamictest.New(t, dynamictest.Locations{"/kibana": kibana})
	a := dynamictest.StartBackend(t, "a")
	c := New(ng.Socket, ng.Token)
	errc := make(chan error, 1)
	go func() { errc <- c.PushBackends(ctx(t), true, []model.Backend{backend(kibana, ep{b: a})}, nil) }()
	time.Sleep(150 * time.Millisecond)
	ng.Start(t)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if status, body := ng.Get(t, "/kibana"); status != 200 || body != "a" {
		t.Errorf("got %d %q, want 200 a", status, body)
	}

	cancelled, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := New(ng.Dir+"/missing.sock", ng.Token).PushBackends(cancelled, true, nil, nil)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "connect") {
		t.Errorf("got %v, want a deadline error naming the connection failure", err)
	}
}

func TestFirstPushMustBeFull(t *testing.T) {
	_, c := start(t)
	for _, delta := range []func() error{
		func() error { return c.PushBackends(ctx(t), false, nil, nil) },
		func() error { return c.PushCertificates(ctx(t), false, nil, nil) },
	} {
		var pe *PushError
		if err := delta(); !errors.As(err, &pe) || pe.Status != 409 || !pe.FullRequired {
			t.Errorf("partial push onto a fresh nginx: got %v, want 409 with FullRequired", err)
		}
	}
	if err := c.PushBackends(ctx(t), true, nil, nil); err != nil {
		t.Errorf("full push: %v", err)
	}
	if err := c.PushCertificates(ctx(t), true, nil, nil); err != nil {
		t.Errorf("full push: %v", err)
	}
	if err := c.PushBackends(ctx(t), false, nil, nil); err != nil {
		t.Errorf("partial push after a full one: %v", err)
	}
}

func TestFullPushDropsUnlisted(t *testing.T) {
	ng, c := start(t)
	a := dynamictest.StartBackend(t, "a")
	push(t, c, backend(kibana, ep{b: a}), backend("default/other:80", ep{b: a}))
	res, err := c.PushBackendsResult(ctx(t), true, []model.Backend{backend(kibana, ep{b: a})}, nil)
	if err != nil || res.Changed != 1 {
		t.Fatalf("full push: %+v %v, want 1 change (other dropped)", res, err)
	}
	if status, _ := ng.Get(t, "/other"); status != 503 {
		t.Errorf("dropped backend: got %d, want 503", status)
	}
	res, err = c.PushBackendsResult(ctx(t), false, nil, []string{kibana})
	if err != nil || res.Changed != 1 {
		t.Fatalf("removal: %+v %v, want 1 change", res, err)
	}
	if status, _ := ng.Get(t, "/kibana"); status != 503 {
		t.Errorf("removed backend: got %d, want 503", status)
	}
}

func cert(t *testing.T, id string, hosts ...string) (model.Certificate, string) {
	t.Helper()
	crt, key, err := tlsutil.SelfSigned(id, hosts...)
	if err != nil {
		t.Fatal(err)
	}
	return model.Certificate{ID: id, Hosts: hosts, CertPEM: string(crt), KeyPEM: string(key)}, serial(t, crt)
}

func TestCertificatesBySNI(t *testing.T) {
	ng, c := start(t)
	def := ng.ServedCertificate(t, "exact.example.com")
	exact, exactSerial := cert(t, "ns/exact", "exact.example.com")
	wild, wildSerial := cert(t, "ns/wild", "*.example.com")
	if err := c.PushCertificates(ctx(t), true, []model.Certificate{exact, wild}, nil); err != nil {
		t.Fatal(err)
	}
	for sni, want := range map[string]string{
		"exact.example.com": exactSerial,
		"EXACT.example.com": exactSerial,
		"foo.example.com":   wildSerial,
		"a.b.example.com":   def, // one label only
		"example.com":       def,
		"other.test":        def,
	} {
		if got := ng.ServedCertificate(t, sni); got != want {
			t.Errorf("SNI %s: served serial %s, want %s", sni, got, want)
		}
	}

	pids := ng.WorkerPIDs()
	rotated, rotatedSerial := cert(t, "ns/exact", "exact.example.com")
	if err := c.PushCertificates(ctx(t), false, []model.Certificate{rotated}, nil); err != nil {
		t.Fatal(err)
	}
	for range 4 { // every worker
		if got := ng.ServedCertificate(t, "exact.example.com"); got != rotatedSerial {
			t.Fatalf("after rotation: served serial %s, want %s", got, rotatedSerial)
		}
	}
	if now := ng.WorkerPIDs(); !slices.Equal(pids, now) {
		t.Errorf("worker pids changed from %v to %v: nginx reloaded", pids, now)
	}

	if err := c.PushCertificates(ctx(t), false, nil, []string{"ns/wild"}); err != nil {
		t.Fatal(err)
	}
	if got := ng.ServedCertificate(t, "foo.example.com"); got != def {
		t.Errorf("removed wildcard: served %s, want the default %s", got, def)
	}
}

// TestMismatchedKeyIsLeftOut: a pair nginx cannot load is left out of the
// push, named with its reason, and the rest is applied; a certificate that
// was stored for that id stays served, even through a full push.
func TestMismatchedKeyIsLeftOut(t *testing.T) {
	ng, c := start(t)
	def := ng.ServedCertificate(t, "none.example.com")
	a, aSerial := cert(t, "ns/a", "a.example.com")
	if err := c.PushCertificates(ctx(t), true, []model.Certificate{a}, nil); err != nil {
		t.Fatal(err)
	}
	b, bSerial := cert(t, "ns/b", "b.example.com")
	renewed, _ := cert(t, "ns/a", "a.example.com")
	renewed.KeyPEM = b.KeyPEM
	fresh, _ := cert(t, "ns/fresh", "fresh.example.com")
	fresh.KeyPEM = b.KeyPEM
	junk := model.Certificate{ID: "ns/junk", Hosts: []string{"junk.example.com"}, CertPEM: "-----BEGIN x", KeyPEM: "-----BEGIN y"}
	err := c.PushCertificates(ctx(t), true, []model.Certificate{renewed, b, fresh, junk}, nil)
	var rej *RejectedError
	if !errors.As(err, &rej) || len(rej.Rejected) != 3 || !strings.Contains(rej.Rejected["ns/a"], "does not match") ||
		!strings.Contains(rej.Rejected["ns/fresh"], "does not match") || !strings.Contains(rej.Rejected["ns/junk"], "invalid certificate") {
		t.Fatalf("got %v, want ns/a and ns/fresh left out as not matching, ns/junk as invalid", err)
	}
	for sni, want := range map[string]string{
		"b.example.com":     bSerial, // the rest of the push is applied
		"a.example.com":     aSerial, // the stored pair stays
		"fresh.example.com": def,     // nothing was stored for it
	} {
		if got := ng.ServedCertificate(t, sni); got != want {
			t.Errorf("SNI %s: served %s, want %s", sni, got, want)
		}
	}
}

func serial(t *testing.T, certPEM []byte) string {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}

// TestCertificatesDictFull: a push that does not fit the certificates dict
// (16 MiB in this conf) is refused with a reason that says what to raise,
// and the certificates nginx had are still served.
func TestCertificatesDictFull(t *testing.T) {
	ng, c := start(t)
	kept, keptSerial := cert(t, "ns/kept", "kept.example.com")
	if err := c.PushCertificates(ctx(t), true, []model.Certificate{kept}, nil); err != nil {
		t.Fatal(err)
	}
	// 150 names make a 4.3 KB PEM, which the dict's slab allocator stores in
	// two 4 KiB pages: 3,000 of them (a 13 MB push) need 24 MiB.
	names := make([]string, 150)
	for i := range names {
		names[i] = fmt.Sprintf("n%03d.example.com", i)
	}
	big, _ := cert(t, "ns/big", names...)
	many := []model.Certificate{kept}
	for i := range 3000 {
		host := fmt.Sprintf("h%d.example.com", i)
		many = append(many, model.Certificate{ID: fmt.Sprintf("ns/c-%d", i), Hosts: []string{host}, CertPEM: big.CertPEM, KeyPEM: big.KeyPEM})
	}
	long, cancel := context.WithTimeout(context.Background(), time.Minute) // a loaded CI machine
	defer cancel()
	err := c.PushCertificates(long, true, many, nil)
	var pe *PushError
	if !errors.As(err, &pe) || pe.Status != 500 || !strings.Contains(pe.Reason, "tidegate_certificates is full") ||
		!strings.Contains(pe.Reason, "certificate_data in the ConfigMap key lua-shared-dicts") {
		t.Fatalf("got %v, want a 500 saying the dict is full and what to raise", err)
	}
	if got := ng.ServedCertificate(t, "kept.example.com"); got != keptSerial {
		t.Errorf("after the refused push: kept.example.com served %s, want %s", got, keptSerial)
	}
}
