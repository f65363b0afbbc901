// Package kube is the Kubernetes source: client-go shared informers for
// Ingress, IngressClass, Service, EndpointSlice, Secret (metadata only, and
// the referenced ones read by GET) and ConfigMap, turned into snapshots for
// the model. It honours the same contract as pkg/source/files: nothing is
// delivered before every watched kind has been listed once, bursts of
// events are debounced, and each delivery is a complete, indexed snapshot
// plus the problems found building it.
package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	corev1informers "k8s.io/client-go/informers/core/v1"
	discoveryv1informers "k8s.io/client-go/informers/discovery/v1"
	networkingv1informers "k8s.io/client-go/informers/networking/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"

	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// Defaults for Options.
const (
	DefaultDebounce = 10 * time.Millisecond
	DefaultMaxDelay = 250 * time.Millisecond
)

// lastApplied is kubectl's copy of the whole object: for a Secret it holds
// the data in clear, and the model reads it for no kind.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// Options configure a Source.
type Options struct {
	// Client talks to the API server.
	Client kubernetes.Interface
	// Metadata watches Secrets without their data (secrets.go).
	Metadata metadata.Interface
	// Reader reads the referenced Secrets (and ConfigMaps the informer
	// stripped) one GET each, all of them at start: give it a rate limit
	// of its own (default Client).
	Reader kubernetes.Interface
	// Namespace limits Ingresses, Services, EndpointSlices and Secrets to
	// one namespace ("" watches all, the --watch-namespace default).
	Namespace string
	// Model are the controller options: the class filter decides which
	// Ingresses' Secrets are kept, ConfigMap names the one ConfigMap watched,
	// and a DefaultBackendService outside Namespace is watched by name.
	Model model.Options
	// Debounce is how long events must stop before a snapshot is built;
	// MaxDelay bounds the wait under a steady stream of events.
	Debounce time.Duration
	MaxDelay time.Duration
	// Logger receives sync and error lines (slog.Default when nil).
	Logger *slog.Logger
}

// Source watches the API server and delivers snapshots.
type Source struct {
	opts    Options
	log     *slog.Logger
	metrics *Metrics
	secrets *keeper[*corev1.Secret]
	// cms keeps the data of ConfigMaps Ingresses reference (configmaps.go).
	cms  *keeper[*corev1.ConfigMap]
	wake chan struct{}

	ingresses  cache.SharedIndexInformer
	classes    cache.SharedIndexInformer
	services   []cache.SharedIndexInformer
	slices     []cache.SharedIndexInformer
	secretInf  cache.SharedIndexInformer
	configMaps cache.SharedIndexInformer // nil without --configmap
	// refConfigMaps are the watched namespaces' ConfigMaps, whole only
	// when an Ingress references them (custom-headers).
	refConfigMaps cache.SharedIndexInformer

	// mu guards what happened since the last delivery: updated
	// EndpointSlices (by namespace/name, the latest version), or full when
	// anything else did (an add, a delete, any other kind).
	mu      sync.Mutex
	updated map[string]*discoveryv1.EndpointSlice
	full    bool
	// last and lastProblems are the last delivery (Run's goroutine only).
	last         *snapshot.Snapshot
	lastProblems []model.Problem
}

// New builds the informers; nothing talks to the API server before Run.
func New(opts Options) (*Source, error) {
	if opts.Client == nil || opts.Metadata == nil {
		return nil, errors.New("kube source: no client")
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.MaxDelay < opts.Debounce {
		opts.MaxDelay = DefaultMaxDelay
	}
	if opts.MaxDelay < opts.Debounce {
		opts.MaxDelay = opts.Debounce
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Source{opts: opts, log: opts.Logger.With("source", "kube"), metrics: NewMetrics(), wake: make(chan struct{}, 1)}
	if opts.Reader == nil {
		opts.Reader = opts.Client
	}
	s.secrets = newSecretKeeper(opts.Reader, s.log)
	s.cms = newConfigMapKeeper(opts.Reader, s.log, opts.Model.ConfigMap)

	c, ns := opts.Client, opts.Namespace
	s.ingresses = networkingv1informers.NewFilteredIngressInformer(c, ns, 0, cache.Indexers{}, nil)
	s.classes = networkingv1informers.NewFilteredIngressClassInformer(c, 0, cache.Indexers{}, nil)
	s.services = []cache.SharedIndexInformer{corev1informers.NewFilteredServiceInformer(c, ns, 0, cache.Indexers{}, nil)}
	// A slice without the service-name label belongs to no Service: the
	// model could never use it, so it is not even listed.
	withServiceLabel := func(o *metav1.ListOptions) { o.LabelSelector = snapshot.ServiceNameLabel }
	s.slices = []cache.SharedIndexInformer{discoveryv1informers.NewFilteredEndpointSliceInformer(c, ns, 0, cache.Indexers{}, withServiceLabel)}
	s.secretInf = newSecretInformer(opts.Metadata, ns)
	s.refConfigMaps = corev1informers.NewFilteredConfigMapInformer(c, ns, 0, cache.Indexers{}, nil)

	if opts.Model.ConfigMap != "" {
		cmNS, cmName, err := splitKey("--configmap", opts.Model.ConfigMap)
		if err != nil {
			return nil, err
		}
		s.configMaps = corev1informers.NewFilteredConfigMapInformer(c, cmNS, 0, cache.Indexers{}, byName(cmName))
	}
	if ref := opts.Model.DefaultSSLCertificate; ref != "" {
		sNS, _, err := splitKey("--default-ssl-certificate", ref)
		if err != nil {
			return nil, err
		}
		if ns != "" && sNS != ns {
			return nil, fmt.Errorf("--default-ssl-certificate %s: only Secrets of --watch-namespace %s are watched; copy the Secret there", ref, ns)
		}
	}
	// The default backend may live outside the watched namespace (typically
	// in the controller's own): watch that one Service and its slices.
	if dbs := opts.Model.DefaultBackendService; dbs != "" && ns != "" {
		dNS, dName, err := splitKey("--default-backend-service", dbs)
		if err != nil {
			return nil, err
		}
		if dNS != ns {
			s.services = append(s.services, corev1informers.NewFilteredServiceInformer(c, dNS, 0, cache.Indexers{}, byName(dName)))
			s.slices = append(s.slices, discoveryv1informers.NewFilteredEndpointSliceInformer(c, dNS, 0, cache.Indexers{},
				func(o *metav1.ListOptions) { o.LabelSelector = snapshot.ServiceNameLabel + "=" + dName }))
		}
	}

	for _, w := range s.all() {
		if err := w.inf.SetTransform(transform(s.cms)); err != nil {
			return nil, fmt.Errorf("kube source: %s informer: %w", w.kind, err)
		}
		if _, err := w.inf.AddEventHandler(s.handler(w.kind)); err != nil {
			return nil, fmt.Errorf("kube source: %s informer: %w", w.kind, err)
		}
	}
	return s, nil
}

// Metrics returns the source's Prometheus collector (informer event counts),
// for the caller to register.
func (s *Source) Metrics() *Metrics { return s.metrics }

type watched struct {
	kind string
	inf  cache.SharedIndexInformer
}

// all lists the informers with their kind, Ingresses and IngressClasses
// first: they decide which ConfigMaps keep their data.
func (s *Source) all() []watched {
	ws := []watched{{"Ingress", s.ingresses}, {"IngressClass", s.classes}}
	for _, i := range s.services {
		ws = append(ws, watched{"Service", i})
	}
	for _, i := range s.slices {
		ws = append(ws, watched{"EndpointSlice", i})
	}
	ws = append(ws, watched{"Secret", s.secretInf})
	if s.configMaps != nil {
		ws = append(ws, watched{"ConfigMap", s.configMaps})
	}
	ws = append(ws, watched{"ConfigMap", s.refConfigMaps})
	return ws
}

func (s *Source) handler(kind string) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { s.metrics.event(kind, "add"); s.changed(nil) },
		UpdateFunc: func(oldObj, newObj any) {
			// Informers only resync when asked to; an update with the same
			// resourceVersion changes nothing.
			if o, ok1 := oldObj.(metav1.Object); ok1 {
				if n, ok2 := newObj.(metav1.Object); ok2 && o.GetResourceVersion() == n.GetResourceVersion() {
					return
				}
			}
			s.metrics.event(kind, "update")
			es, _ := newObj.(*discoveryv1.EndpointSlice)
			s.changed(es)
		},
		DeleteFunc: func(any) { s.metrics.event(kind, "delete"); s.changed(nil) },
	}
}

// changed records an event: the new version of an updated EndpointSlice,
// or nil for anything else, which makes the next delivery a full one.
func (s *Source) changed(es *discoveryv1.EndpointSlice) {
	s.mu.Lock()
	if es == nil {
		s.full = true
	} else {
		if s.updated == nil {
			s.updated = map[string]*discoveryv1.EndpointSlice{}
		}
		s.updated[snapshot.Key(es.Namespace, es.Name)] = es
	}
	s.mu.Unlock()
	s.poke()
}

func (s *Source) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run starts the informers, waits until every one has listed its objects,
// then calls onChange with a full snapshot, and again after every burst of
// changes (debounced). onChange is never called concurrently. Run returns
// nil when ctx is done, or an error if the caches never sync.
func (s *Source) Run(ctx context.Context, onChange func(*snapshot.Snapshot, []model.Problem)) error {
	begin := time.Now()
	ws := s.all()
	// Ingresses and classes first, so the ConfigMaps' initial list
	// already knows which ones to keep whole (no GET per ConfigMap at
	// start).
	for i, w := range ws {
		if i == 2 {
			if !s.waitSynced(ctx, ws[:2]) {
				return s.syncErr(ctx, ws[:2])
			}
			s.cms.setReferenced(referencedConfigMaps(s.list(false), s.opts.Model))
		}
		go w.inf.RunWithContext(ctx)
	}
	if !s.waitSynced(ctx, ws) {
		return s.syncErr(ctx, ws)
	}
	s.log.Info("informer caches synced", "namespace", nsLabel(s.opts.Namespace), "took", time.Since(begin).Round(time.Millisecond))
	s.deliver(ctx, onChange)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		}
		if !s.debounce(ctx) {
			return nil
		}
		s.deliver(ctx, onChange)
	}
}

func (s *Source) waitSynced(ctx context.Context, ws []watched) bool {
	fns := make([]cache.InformerSynced, len(ws))
	for i, w := range ws {
		fns[i] = w.inf.HasSynced
	}
	return cache.WaitForCacheSync(ctx.Done(), fns...)
}

func (s *Source) syncErr(ctx context.Context, ws []watched) error {
	if ctx.Err() != nil {
		return nil
	}
	var missing []string
	for _, w := range ws {
		if !w.inf.HasSynced() {
			missing = append(missing, w.kind)
		}
	}
	return fmt.Errorf("kube source: caches of %s never synced", strings.Join(missing, ", "))
}

// debounce waits until no event came for Debounce, at most MaxDelay. It
// returns false when ctx is done.
func (s *Source) debounce(ctx context.Context) bool {
	deadline := time.NewTimer(s.opts.MaxDelay)
	defer deadline.Stop()
	quiet := time.NewTimer(s.opts.Debounce)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return true
		case <-quiet.C:
			return true
		case <-s.wake:
			quiet.Reset(s.opts.Debounce)
		}
	}
}

func (s *Source) deliver(ctx context.Context, onChange func(*snapshot.Snapshot, []model.Problem)) {
	begin := time.Now()
	s.mu.Lock()
	updated, full := s.updated, s.full
	s.updated, s.full = nil, false
	s.mu.Unlock()
	snap, problems := s.patch(updated, full)
	how := "patched"
	if snap != nil {
		s.metrics.patched.Inc()
	} else {
		snap, problems = s.snapshot(ctx)
		how = "built"
	}
	s.last, s.lastProblems = snap, problems
	s.metrics.snapshots.Inc()
	s.log.Debug("snapshot "+how, "ingresses", len(snap.Ingresses), "services", len(snap.Services),
		"endpointslices", len(snap.EndpointSlices), "secrets", len(snap.Secrets), "took", time.Since(begin))
	onChange(snap, problems)
}

// patch returns the last snapshot with the updated EndpointSlices in place
// of their old versions, when those updates are all that happened since:
// Pods scaling and rolling, the most frequent events by far, then cost the
// slices they change instead of listing and indexing every object (the
// model's Update recomputes only the backends of those slices, too). It
// returns nil when a full snapshot is needed: any other event, no earlier
// delivery, or one that had problems (resolving Secrets and ConfigMaps
// again may clear them).
func (s *Source) patch(updated map[string]*discoveryv1.EndpointSlice, full bool) (*snapshot.Snapshot, []model.Problem) {
	if full || len(updated) == 0 || s.last == nil || len(s.lastProblems) > 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(updated))
	for k := range updated {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	objs := make([]*discoveryv1.EndpointSlice, len(keys))
	for i, k := range keys {
		objs[i] = updated[k]
	}
	snap, ok := s.last.ReplaceEndpointSlices(objs)
	if !ok {
		return nil, nil
	}
	return snap, nil
}

// snapshot lists the caches into a new snapshot. Its Secrets are the ones
// our Ingresses reference, with their data.
func (s *Source) snapshot(ctx context.Context) (*snapshot.Snapshot, []model.Problem) {
	snap := s.list(true)
	refs := referencedSecrets(snap, s.opts.Model)
	var problems []model.Problem
	snap.Secrets, problems = s.secrets.resolve(ctx, refs, listAs[metav1.Object](s.secretInf), nil)
	cmRefs := referencedConfigMaps(snap, s.opts.Model)
	s.cms.setReferenced(cmRefs)
	cms, cmProblems := s.cms.resolve(ctx, cmRefs, listAs[metav1.Object](s.refConfigMaps), wholeConfigMap)
	snap.ConfigMaps = append(snap.ConfigMaps, cms...)
	problems = append(problems, cmProblems...)
	return snap.Index(), problems
}

// list copies the caches' object pointers (never the objects: the model
// does not mutate them) into an indexed snapshot without Secrets.
func (s *Source) list(everything bool) *snapshot.Snapshot {
	snap := &snapshot.Snapshot{
		Ingresses:      listAs[*networkingv1.Ingress](s.ingresses),
		IngressClasses: listAs[*networkingv1.IngressClass](s.classes),
	}
	if everything {
		for _, i := range s.services {
			snap.Services = append(snap.Services, listAs[*corev1.Service](i)...)
		}
		for _, i := range s.slices {
			snap.EndpointSlices = append(snap.EndpointSlices, listAs[*discoveryv1.EndpointSlice](i)...)
		}
		if s.configMaps != nil {
			snap.ConfigMaps = listAs[*corev1.ConfigMap](s.configMaps)
		}
	}
	return snap.Index()
}

func listAs[T any](inf cache.SharedIndexInformer) []T {
	objs := inf.GetStore().List()
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// referencedSecrets returns the namespace/name of every Secret an Ingress of
// our class reads (model.SecretRefs) and the --default-ssl-certificate one.
func referencedSecrets(snap *snapshot.Snapshot, opts model.Options) map[string]bool {
	refs := map[string]bool{}
	if opts.DefaultSSLCertificate != "" {
		refs[opts.DefaultSSLCertificate] = true
	}
	for _, ing := range model.OurIngresses(snap, opts) {
		for _, key := range model.SecretRefs(ing) {
			refs[key] = true
		}
	}
	return refs
}

// transform trims objects before they enter a cache: managed fields and
// kubectl's last-applied copy everywhere, and the data of every ConfigMap
// (but the --configmap one) no Ingress of ours references. Secrets have
// no data to trim: they are watched as metadata.
func transform(cms *keeper[*corev1.ConfigMap]) cache.TransformFunc {
	return func(obj any) (any, error) {
		m, ok := obj.(metav1.Object)
		if !ok {
			return obj, nil // a tombstone: already transformed
		}
		m.SetManagedFields(nil)
		if a := m.GetAnnotations(); a[lastApplied] != "" {
			delete(a, lastApplied)
		}
		if cm, ok := obj.(*corev1.ConfigMap); ok && !cms.keepWhole(snapshot.Key(cm.Namespace, cm.Name)) {
			stripConfigMap(cm)
		}
		return obj, nil
	}
}

func byName(name string) func(*metav1.ListOptions) {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	return func(o *metav1.ListOptions) { o.FieldSelector = sel }
}

func splitKey(flag, key string) (string, string, error) {
	ns, name, ok := strings.Cut(key, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("%s %q: want NAMESPACE/NAME", flag, key)
	}
	return ns, name, nil
}

func nsLabel(ns string) string {
	if ns == "" {
		return "(all)"
	}
	return ns
}
