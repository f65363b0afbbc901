package status

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the status writer's Prometheus series. It is a
// prometheus.Collector: register it into the controller's registry.
type Metrics struct {
	leader  prometheus.Gauge
	updates *prometheus.CounterVec
	events  prometheus.Counter
}

func newMetrics() *Metrics {
	return &Metrics{
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tidegate_leader",
			Help: "1 while this replica holds the election Lease and writes Ingress status."}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tidegate_status_updates_total",
			Help: "Ingress status writes, by result (success, conflict, error)."}, []string{"result"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "tidegate_events_total",
			Help: "Warning Events recorded on Ingresses for rejected configuration."}),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.leader.Describe(ch)
	m.updates.Describe(ch)
	m.events.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.leader.Collect(ch)
	m.updates.Collect(ch)
	m.events.Collect(ch)
}
