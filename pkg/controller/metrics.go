package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the controller's own Prometheus series.
type metrics struct {
	reg           *prometheus.Registry
	reloads       *prometheus.CounterVec
	reloadSeconds prometheus.Gauge
	lastReloadOK  prometheus.Gauge
	// ingress-nginx's names for the same, which dashboards and alerts use
	configLastReloadOK     prometheus.Gauge
	configLastReloadOKTime prometheus.Gauge
	pushes                 *prometheus.CounterVec
	pushSeconds            *prometheus.HistogramVec
	problems               *prometheus.GaugeVec
	inSync                 prometheus.Gauge
	syncs                  prometheus.Counter
	resyncs                prometheus.Counter
	nginxRestarts          prometheus.Counter
	adoptions              prometheus.Counter
	backendsPushed         prometheus.Gauge
	// nginx started anew because it refused every push (controller.replace)
	nginxReplacements prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tidegate_reloads_total",
			Help: "nginx reloads, by result (success, check_failed, failed)."}, []string{"result"}),
		reloadSeconds: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tidegate_last_reload_duration_seconds",
			Help: "Duration of the last reload: check, signal, and wait for new workers."}),
		lastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tidegate_last_reload_successful",
			Help: "1 if the last reload succeeded."}),
		configLastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "nginx_ingress_controller_config_last_reload_successful",
			Help: "Whether the last configuration reload attempt was successful (a candidate nginx -t refused counts as a failed one)."}),
		configLastReloadOKTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: "nginx_ingress_controller_config_last_reload_successful_timestamp_seconds",
			Help: "Timestamp of the last successful configuration reload (the first configuration counts)."}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tidegate_pushes_total",
			Help: "Pushes to the Lua data plane, by kind (backends, certificates) and result."}, []string{"kind", "result"}),
		pushSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tidegate_push_duration_seconds",
			Help:    "Duration of pushes to the Lua data plane.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}}, []string{"kind"}),
		problems: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tidegate_config_problems",
			Help: "Objects or parts of objects skipped in the last sync, by kind."}, []string{"kind"}),
		inSync: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tidegate_config_in_sync",
			Help: "1 if nginx and Lua serve the latest model."}),
		syncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "tidegate_syncs_total",
			Help: "Snapshots translated."}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "tidegate_resyncs_total",
			Help: "Resyncs asked for (SIGHUP): model built anew, structure checked again, everything pushed."}),
		nginxRestarts: prometheus.NewCounter(prometheus.CounterOpts{Name: "tidegate_nginx_restarts_total",
			Help: "Times nginx exited unexpectedly and was restarted."}),
		adoptions: prometheus.NewCounter(prometheus.CounterOpts{Name: "tidegate_nginx_adoptions_total",
			Help: "Times tidegate adopted an nginx that a previous tidegate left running on its working directory (0 or 1)."}),
		nginxReplacements: prometheus.NewCounter(prometheus.CounterOpts{Name: "tidegate_nginx_replacements_total",
			Help: "Times nginx was started anew from tidegate's state because it refused every push several times in a row."}),
		backendsPushed: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tidegate_backends",
			Help: "Backends known to the Lua data plane."}),
	}
	m.reg.MustRegister(m.reloads, m.reloadSeconds, m.lastReloadOK, m.configLastReloadOK, m.configLastReloadOKTime, m.pushes, m.pushSeconds, m.problems,
		m.inSync, m.syncs, m.resyncs, m.nginxRestarts, m.adoptions, m.nginxReplacements, m.backendsPushed,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
