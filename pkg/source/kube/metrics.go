package kube

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the kube source's Prometheus series. It is a
// prometheus.Collector: register it into the controller's registry.
type Metrics struct {
	events    *prometheus.CounterVec
	snapshots prometheus.Counter
	patched   prometheus.Counter
}

// NewMetrics returns zeroed metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tidegate_informer_events_total",
			Help: "Events received from the API server watches, by kind and event (add, update, delete)."},
			[]string{"kind", "event"}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{Name: "tidegate_snapshots_total",
			Help: "Snapshots built from the informer caches and handed to the controller."}),
		patched: prometheus.NewCounter(prometheus.CounterOpts{Name: "tidegate_snapshots_patched_total",
			Help: "Snapshots made by putting updated EndpointSlices into the previous one instead of listing every object (part of tidegate_snapshots_total)."}),
	}
}

func (m *Metrics) event(kind, event string) { m.events.WithLabelValues(kind, event).Inc() }

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.events.Describe(ch)
	m.snapshots.Describe(ch)
	m.patched.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.events.Collect(ch)
	m.snapshots.Collect(ch)
	m.patched.Collect(ch)
}
