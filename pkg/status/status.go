// Package status writes what a cluster learns about tidegate back into the
// API: Ingress .status.loadBalancer.ingress (the address clients reach the
// controller at) and Events on Ingresses whose configuration was rejected in
// part. Every replica serves traffic, but only the one holding the
// coordination.k8s.io Lease writes, so replicas never fight over a field and
// an event is recorded once, not once per replica.
package status

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// Config configures a Writer.
type Config struct {
	// Client talks to the API server.
	Client kubernetes.Interface
	// Model holds the class filter: only our Ingresses get our address.
	Model model.Options
	// PublishAddresses are the IPs or host names to publish
	// (--publish-status-address); they win over PublishService.
	PublishAddresses []string
	// PublishService is "namespace/name" of the Service whose address is
	// published (--publish-service): its load balancer ingress, else its
	// external IPs, else its cluster IP.
	PublishService string
	// PodName and PodNamespace identify this replica (downward API). With
	// neither publish setting, the addresses of the nodes running the
	// replicas (pods with this pod's labels) are published: right for a
	// DaemonSet with hostPort or hostNetwork.
	PodName, PodNamespace string
	// Election configures the Lease.
	Election Election
	// Resync is how often the leader re-reads the publish address and
	// re-checks every Ingress even with no change (default 30s).
	Resync time.Duration
	// Logger receives status lines (slog.Default when nil).
	Logger *slog.Logger
}

// Writer elects a leader and, while leading, keeps Ingress statuses and
// problem Events current. Create it with New, feed it snapshots with Update,
// and run it with Run.
type Writer struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics

	mu     sync.Mutex
	latest *snapshot.Snapshot
	wake   chan struct{}

	leading  atomic.Bool
	recorder record.EventRecorder
	// emitted are the problems already recorded as Events during this term
	// of leadership: a standing problem is recorded once, not per sync.
	emitted map[string]bool
	// reports are the annotation report messages already recorded per
	// Ingress during this term (events.go): one Event per change.
	reports map[string]string
	// lastAddrs is logged when the published addresses change.
	lastAddrs string
}

// New checks the configuration and returns an idle Writer.
func New(cfg Config) (*Writer, error) {
	if cfg.Client == nil {
		return nil, errors.New("status: no client")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 30 * time.Second
	}
	if cfg.PublishService != "" {
		if ns, name, ok := strings.Cut(cfg.PublishService, "/"); !ok || ns == "" || name == "" {
			return nil, fmt.Errorf("--publish-service %q: want NAMESPACE/NAME", cfg.PublishService)
		}
	}
	for _, a := range cfg.PublishAddresses {
		if a == "" || strings.ContainsAny(a, " /") {
			return nil, fmt.Errorf("--publish-status-address %q: want IPs or host names separated by commas", a)
		}
	}
	if err := cfg.Election.complete(cfg); err != nil {
		return nil, err
	}
	return &Writer{cfg: cfg, log: cfg.Logger.With("component", "status"), metrics: newMetrics(),
		wake: make(chan struct{}, 1), emitted: map[string]bool{}, reports: map[string]string{}}, nil
}

// Metrics returns the writer's Prometheus collector for the caller to
// register.
func (w *Writer) Metrics() *Metrics { return w.metrics }

// Leading reports whether this replica holds the Lease now.
func (w *Writer) Leading() bool { return w.leading.Load() }

// Update hands the writer the latest snapshot. It never blocks.
func (w *Writer) Update(snap *snapshot.Snapshot) {
	w.mu.Lock()
	w.latest = snap
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// lead runs while this replica holds the Lease: a pass on every snapshot
// and every Resync.
func (w *Writer) lead(ctx context.Context) {
	w.emitted = map[string]bool{}
	w.reports = map[string]string{}
	tick := time.NewTicker(w.cfg.Resync)
	defer tick.Stop()
	for {
		w.mu.Lock()
		snap := w.latest
		w.mu.Unlock()
		if snap != nil {
			w.pass(ctx, snap)
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-tick.C:
		}
	}
}

// pass brings every Ingress of ours to the published address and records
// Events for problems not yet recorded.
func (w *Writer) pass(ctx context.Context, snap *snapshot.Snapshot) {
	ours := model.OurIngresses(snap, w.cfg.Model)
	w.recordProblems(snap)
	addrs, err := w.addresses(ctx)
	if err != nil {
		w.log.Error("cannot tell the address to publish; Ingress status left as it is", "err", err)
		return
	}
	if s := strings.Join(addrs, ","); s != w.lastAddrs {
		w.log.Info("publishing address in Ingress status", "addresses", s)
		w.lastAddrs = s
	}
	if len(addrs) == 0 {
		return
	}
	want := loadBalancer(addrs)
	for _, ing := range ours {
		if ctx.Err() != nil {
			return
		}
		if sameAddresses(ing.Status.LoadBalancer.Ingress, want) {
			continue
		}
		upd := ing.DeepCopy()
		upd.Status.LoadBalancer.Ingress = want
		_, err := w.cfg.Client.NetworkingV1().Ingresses(ing.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
		switch {
		case err == nil:
			w.metrics.updates.WithLabelValues("success").Inc()
			w.log.Info("ingress status updated", "ingress", snapshot.Key(ing.Namespace, ing.Name), "addresses", w.lastAddrs)
		case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
			// The cache is behind; its next event brings another pass.
			w.metrics.updates.WithLabelValues("conflict").Inc()
		default:
			w.metrics.updates.WithLabelValues("error").Inc()
			w.log.Error("update ingress status", "ingress", snapshot.Key(ing.Namespace, ing.Name), "err", err)
		}
	}
}

// addresses returns the sorted addresses to publish.
func (w *Writer) addresses(ctx context.Context) ([]string, error) {
	if len(w.cfg.PublishAddresses) > 0 {
		return sortedUnique(w.cfg.PublishAddresses), nil
	}
	if w.cfg.PublishService != "" {
		ns, name, _ := strings.Cut(w.cfg.PublishService, "/")
		svc, err := w.cfg.Client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("--publish-service %s: %w", w.cfg.PublishService, err)
		}
		return serviceAddresses(svc), nil
	}
	return w.nodeAddresses(ctx)
}

// serviceAddresses follows ingress-nginx: a load balancer's ingress points
// and the external IPs; an ExternalName's name; else the cluster IP.
func serviceAddresses(svc *corev1.Service) []string {
	var out []string
	switch svc.Spec.Type {
	case corev1.ServiceTypeExternalName:
		return []string{svc.Spec.ExternalName}
	case corev1.ServiceTypeLoadBalancer:
		for _, lb := range svc.Status.LoadBalancer.Ingress {
			if lb.IP != "" {
				out = append(out, lb.IP)
			} else if lb.Hostname != "" {
				out = append(out, lb.Hostname)
			}
		}
	}
	out = append(out, svc.Spec.ExternalIPs...)
	if len(out) == 0 && svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		out = append(out, svc.Spec.ClusterIP)
	}
	return sortedUnique(out)
}

// nodeAddresses returns the external (else internal) address of each node
// running a pod with this pod's labels.
func (w *Writer) nodeAddresses(ctx context.Context) ([]string, error) {
	if w.cfg.PodName == "" || w.cfg.PodNamespace == "" {
		return nil, nil // out of a cluster with no publish setting: nothing to say
	}
	core := w.cfg.Client.CoreV1()
	me, err := core.Pods(w.cfg.PodNamespace).Get(ctx, w.cfg.PodName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get own pod %s/%s: %w", w.cfg.PodNamespace, w.cfg.PodName, err)
	}
	sel := labels.Set{}
	for k, v := range me.Labels {
		// Labels that change with every rollout would split the replicas.
		if k != "controller-revision-hash" && k != "pod-template-generation" && k != "pod-template-hash" {
			sel[k] = v
		}
	}
	pods, err := core.Pods(w.cfg.PodNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("list replicas: %w", err)
	}
	nodes := map[string]bool{}
	for _, p := range pods.Items {
		if p.Spec.NodeName != "" && p.DeletionTimestamp == nil {
			nodes[p.Spec.NodeName] = true
		}
	}
	var out []string
	for name := range nodes {
		n, err := core.Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get node %s: %w", name, err)
		}
		if a := nodeAddress(n); a != "" {
			out = append(out, a)
		}
	}
	return sortedUnique(out), nil
}

func nodeAddress(n *corev1.Node) string {
	for _, t := range []corev1.NodeAddressType{corev1.NodeExternalIP, corev1.NodeInternalIP} {
		for _, a := range n.Status.Addresses {
			if a.Type == t && a.Address != "" {
				return a.Address
			}
		}
	}
	return ""
}

func loadBalancer(addrs []string) []networkingv1.IngressLoadBalancerIngress {
	out := make([]networkingv1.IngressLoadBalancerIngress, 0, len(addrs))
	for _, a := range addrs {
		if net.ParseIP(a) != nil {
			out = append(out, networkingv1.IngressLoadBalancerIngress{IP: a})
		} else {
			out = append(out, networkingv1.IngressLoadBalancerIngress{Hostname: a})
		}
	}
	return out
}

func sameAddresses(have, want []networkingv1.IngressLoadBalancerIngress) bool {
	key := func(l []networkingv1.IngressLoadBalancerIngress) []string {
		out := make([]string, len(l))
		for i, e := range l {
			out[i] = e.IP + "|" + e.Hostname
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(key(have), key(want))
}

func sortedUnique(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}
