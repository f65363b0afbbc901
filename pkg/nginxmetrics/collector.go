// Package nginxmetrics reads what nginx reports about the traffic it serves
// (its metrics log and its stub_status) and exposes it to Prometheus.
package nginxmetrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/nginx"
)

// The data-plane metrics: nginx logs every request to a buffered metrics
// log that this collector counts (log.go), and at each scrape it
// also reads nginx's stub_status over the control socket; both are exposed
// with ingress-nginx's metric and label names, so existing dashboards and
// alerts keep working.
//
// Labels are bounded by the configuration: namespace, ingress, service,
// host (the rule's host, "" for the catch-all server), path (the Ingress
// path pattern, never the request path), method (the nine standard
// methods, else OTHER) and status. status is the code ("200", "503") as in
// ingress-nginx, so alerts written as status=~"5.." keep working; there are
// few distinct codes. Latency histograms and size summaries leave method
// and status out, which keeps the number of bucket series small.

// latencyBuckets are ingress-nginx's default buckets.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

var (
	routeLabels = []string{"namespace", "ingress", "service", "host", "path"}

	descRequests = prometheus.NewDesc("nginx_ingress_controller_requests",
		"Requests served by nginx, by Ingress path, method and status code.",
		append(append([]string{}, routeLabels...), "method", "status"), nil)
	descRequestDuration = prometheus.NewDesc("nginx_ingress_controller_request_duration_seconds",
		"Time nginx took to answer a request ($request_time).", routeLabels, nil)
	descResponseDuration = prometheus.NewDesc("nginx_ingress_controller_response_duration_seconds",
		"Time the upstream took to answer, over all tries ($upstream_response_time).", routeLabels, nil)
	descRequestSize = prometheus.NewDesc("nginx_ingress_controller_request_size",
		"Request bytes received from clients, headers included ($request_length).", routeLabels, nil)
	descResponseSize = prometheus.NewDesc("nginx_ingress_controller_response_size",
		"Response bytes sent to clients, headers included ($bytes_sent).", routeLabels, nil)
	descEndpoint = prometheus.NewDesc("tidegate_upstream_endpoint_responses_total",
		"Tries per endpoint by outcome: 1xx..5xx (the status class of the answer), error (no answer: refused, reset), timeout.",
		[]string{"namespace", "service", "endpoint", "outcome"}, nil)
	descConnectErrors = prometheus.NewDesc("tidegate_upstream_connect_errors_total",
		"Tries that got no answer from an endpoint (connection refused, reset, or closed before the header).",
		[]string{"namespace", "service"}, nil)
	descConnections = prometheus.NewDesc("nginx_ingress_controller_nginx_process_connections",
		"Current client connections of nginx by state (stub_status).", []string{"state"}, nil)
	descConnectionsTotal = prometheus.NewDesc("nginx_ingress_controller_nginx_process_connections_total",
		"Client connections nginx accepted and handled (stub_status).", []string{"state"}, nil)
	descProcessRequests = prometheus.NewDesc("nginx_ingress_controller_nginx_process_requests_total",
		"Client requests nginx read, control socket included (stub_status).", nil, nil)
	descUp = prometheus.NewDesc("tidegate_dataplane_metrics_up",
		"1 if the last scrape read nginx's metrics log (unless --enable-metrics=false) and its stub_status over the control socket.", nil, nil)
)

// Collector is a prometheus.Collector reading nginx's metrics log and its
// stub_status over the control socket.
type Collector struct {
	client *http.Client
	log    *Log
}

// NewCollector reads stub_status over the control socket with the control
// token, and request counts from log (nil: nginx writes no metrics line).
func NewCollector(socket, token string, log *Log) *Collector {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns: 2,
	}
	return &Collector{client: &http.Client{Transport: nginx.WithToken(tr, token), Timeout: 3 * time.Second}, log: log}
}

// Describe sends nothing: the series depend on the configuration, so this
// is an unchecked collector.
func (d *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect reads nginx and sends the series.
func (d *Collector) Collect(ch chan<- prometheus.Metric) {
	up := 1.0
	s, err := d.log.Poll()
	s.emit(ch)
	if err != nil && !errors.Is(err, errMetricsOff) {
		up = 0
	}
	if raw, serr := d.get("/tidegate/stub_status"); serr != nil {
		up = 0
	} else if st, serr := parseStubStatus(raw); serr != nil {
		up = 0
	} else {
		for _, s := range []string{"active", "reading", "writing", "waiting"} {
			ch <- prometheus.MustNewConstMetric(descConnections, prometheus.GaugeValue, st[s], s)
		}
		for _, s := range []string{"accepted", "handled"} {
			ch <- prometheus.MustNewConstMetric(descConnectionsTotal, prometheus.CounterValue, st[s], s)
		}
		ch <- prometheus.MustNewConstMetric(descProcessRequests, prometheus.CounterValue, st["requests"])
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up)
}

func (d *Collector) get(path string) (string, error) {
	resp, err := d.client.Get("http://tidegate" + path)
	if err != nil {
		return "", fmt.Errorf("read %s from nginx: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return "", fmt.Errorf("read %s from nginx: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("read %s from nginx: %s", path, resp.Status)
	}
	return string(b), nil
}

// route is the label values of one request series.
type route struct{ namespace, ingress, service, host, path string }

func (r route) values() []string { return []string{r.namespace, r.ingress, r.service, r.host, r.path} }

// routeStats are the counts of one route.
type routeStats struct {
	requests   map[[2]string]float64 // method, status
	duration   [12]uint64            // per bucket, the last one +Inf
	durSum     float64
	upstream   [12]uint64
	upSum      float64
	bytesIn    float64
	bytesOut   float64
	hasUpTimes bool
}

// Snapshot is the request counts so far, aggregated by the label
// values Prometheus sees (two backends can share a service name).
type Snapshot struct {
	routes    map[route]*routeStats
	endpoints map[[4]string]float64 // namespace, service, endpoint, outcome
	connErrs  map[[2]string]float64
}

// Endpoints is the number of tries per endpoint, keyed by namespace,
// service, endpoint ("addr:port") and outcome (1xx..5xx, error, timeout).
func (s *Snapshot) Endpoints() map[[4]string]float64 { return s.endpoints }

// SplitBackend turns "ns/svc:port" into its namespace and service.
func SplitBackend(b string) (ns, svc string) {
	ns, rest, ok := strings.Cut(b, "/")
	if !ok {
		return "", b
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		rest = rest[:i]
	}
	return ns, rest
}

func newRoute(ingress, host, path, backend string) route {
	ns, svc := SplitBackend(backend)
	ins, name, ok := strings.Cut(ingress, "/")
	if ok {
		ns = ins
	} else {
		name = ingress
	}
	return route{namespace: ns, ingress: name, service: svc, host: host, path: path}
}

// LiveEndpoints reports which "ns/svc" + "addr:port" pairs m balances to.
// It indexes the backends by Service, not every endpoint: it is asked only
// about endpoints that served requests, and rebuilt for every new model.
func LiveEndpoints(m *model.Model) func(ns, svc, addr string) bool {
	var bySvc map[[2]string][]*model.Backend
	if m != nil {
		bySvc = make(map[[2]string][]*model.Backend, len(m.Dynamic.Backends))
		for i := range m.Dynamic.Backends {
			b := &m.Dynamic.Backends[i]
			ns, svc := SplitBackend(b.Name)
			bySvc[[2]string{ns, svc}] = append(bySvc[[2]string{ns, svc}], b)
		}
	}
	return func(ns, svc, addr string) bool {
		host, p, err := net.SplitHostPort(addr)
		if err != nil {
			return false
		}
		port, err := strconv.Atoi(p)
		if err != nil {
			return false
		}
		for _, b := range bySvc[[2]string{ns, svc}] {
			for _, e := range b.Endpoints {
				if e.Address == host && int(e.Port) == port {
					return true
				}
			}
		}
		return false
	}
}

// EndpointAddr is how nginx writes the endpoint in $upstream_addr.
func EndpointAddr(e model.Endpoint) string {
	return net.JoinHostPort(e.Address, strconv.Itoa(int(e.Port)))
}

func histogram(desc *prometheus.Desc, counts [12]uint64, sum float64, labels []string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(latencyBuckets))
	var cum uint64
	for i, ub := range latencyBuckets {
		cum += counts[i]
		buckets[ub] = cum
	}
	cum += counts[len(latencyBuckets)]
	return prometheus.MustNewConstHistogram(desc, cum, sum, buckets, labels...)
}

func (s *Snapshot) emit(ch chan<- prometheus.Metric) {
	for r, st := range s.routes {
		lv := r.values()
		var n uint64
		for k, v := range st.requests {
			ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, v, append(append([]string{}, lv...), k[0], k[1])...)
		}
		for _, c := range st.duration {
			n += c
		}
		ch <- histogram(descRequestDuration, st.duration, st.durSum, lv)
		if st.hasUpTimes {
			ch <- histogram(descResponseDuration, st.upstream, st.upSum, lv)
		}
		ch <- prometheus.MustNewConstSummary(descRequestSize, n, st.bytesIn, nil, lv...)
		ch <- prometheus.MustNewConstSummary(descResponseSize, n, st.bytesOut, nil, lv...)
	}
	for k, v := range s.endpoints {
		ch <- prometheus.MustNewConstMetric(descEndpoint, prometheus.CounterValue, v, k[0], k[1], k[2], k[3])
	}
	for k, v := range s.connErrs {
		ch <- prometheus.MustNewConstMetric(descConnectErrors, prometheus.CounterValue, v, k[0], k[1])
	}
}

// parseStubStatus reads nginx's stub_status page:
//
//	Active connections: 1
//	server accepts handled requests
//	 16 16 31
//	Reading: 0 Writing: 1 Waiting: 0
func parseStubStatus(raw string) (map[string]float64, error) {
	f := strings.Fields(raw)
	out := map[string]float64{}
	want := map[string]int{"active": 2, "accepted": 7, "handled": 8, "requests": 9, "reading": 11, "writing": 13, "waiting": 15}
	if len(f) < 16 || f[0] != "Active" || f[3] != "server" {
		return nil, fmt.Errorf("stub_status: unexpected answer %q", raw)
	}
	for k, i := range want {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return nil, fmt.Errorf("stub_status %s: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}
