package kube

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/metadata"
	k8stesting "k8s.io/client-go/testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

func ingress(ns, name, class string, tlsSecrets ...string) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: networkingv1.IngressSpec{IngressClassName: &class}}
	for _, s := range tlsSecrets {
		ing.Spec.TLS = append(ing.Spec.TLS, networkingv1.IngressTLS{Hosts: []string{name + ".test"}, SecretName: s})
	}
	return ing
}

func secret(ns, name string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: "1",
		Annotations: map[string]string{lastApplied: `{"data":"secret in clear"}`}},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("crt"), "tls.key": []byte("key")}}
}

// recorder collects what the source delivers.
type recorder struct {
	mu    sync.Mutex
	snaps []*snapshot.Snapshot
	probs [][]model.Problem
	ch    chan struct{}
}

func newRecorder() *recorder { return &recorder{ch: make(chan struct{}, 100)} }

func (r *recorder) onChange(s *snapshot.Snapshot, p []model.Problem) {
	r.mu.Lock()
	r.snaps, r.probs = append(r.snaps, s), append(r.probs, p)
	r.mu.Unlock()
	r.ch <- struct{}{}
}

// next waits for a delivery satisfying ok and returns it.
func (r *recorder) next(t testing.TB, what string, ok func(*snapshot.Snapshot) bool) *snapshot.Snapshot {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		r.mu.Lock()
		if n := len(r.snaps); n > 0 && ok(r.snaps[n-1]) {
			s := r.snaps[n-1]
			r.mu.Unlock()
			return s
		}
		r.mu.Unlock()
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("no snapshot with %s", what)
		}
	}
}

// secretMetadata serves the Secrets of a fake clientset as an API server
// serves them to a metadata client: without their data. It reads the
// fake's tracker, so the fake records no action for it: the actions on
// Secrets the fake records are the source's own, through its typed client.
type secretMetadata struct{ client *fake.Clientset }

var secretsGVR = corev1.SchemeGroupVersion.WithResource("secrets")

func (m secretMetadata) Resource(gvr schema.GroupVersionResource) metadata.Getter {
	if gvr != secretsGVR {
		panic("secretMetadata serves Secrets only, not " + gvr.String())
	}
	return secretMetadataNS{m.client, ""}
}

// IsWatchListSemanticsUnSupported: like the fakes, list then watch.
func (m secretMetadata) IsWatchListSemanticsUnSupported() bool { return true }

type secretMetadataNS struct {
	client *fake.Clientset
	ns     string
}

func asMetadata(obj runtime.Object) *metav1.PartialObjectMetadata {
	sec := obj.(*corev1.Secret)
	return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: *sec.ObjectMeta.DeepCopy()}
}

func (m secretMetadataNS) Namespace(ns string) metadata.ResourceInterface {
	return secretMetadataNS{m.client, ns}
}

func (m secretMetadataNS) List(_ context.Context, opts metav1.ListOptions) (*metav1.PartialObjectMetadataList, error) {
	obj, err := m.client.Tracker().List(secretsGVR, corev1.SchemeGroupVersion.WithKind("Secret"), m.ns, opts)
	if err != nil {
		return nil, err
	}
	out := &metav1.PartialObjectMetadataList{}
	for i := range obj.(*corev1.SecretList).Items {
		out.Items = append(out.Items, *asMetadata(&obj.(*corev1.SecretList).Items[i]))
	}
	return out, nil
}

func (m secretMetadataNS) Watch(_ context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	w, err := m.client.Tracker().Watch(secretsGVR, m.ns, opts)
	if err != nil {
		return nil, err
	}
	return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
		if _, ok := e.Object.(*corev1.Secret); ok {
			e.Object = asMetadata(e.Object)
		}
		return e, true
	}), nil
}

func (m secretMetadataNS) Get(context.Context, string, metav1.GetOptions, ...string) (*metav1.PartialObjectMetadata, error) {
	return nil, errors.New("not used")
}

func (m secretMetadataNS) Delete(context.Context, string, metav1.DeleteOptions, ...string) error {
	return errors.New("not used")
}

func (m secretMetadataNS) DeleteCollection(context.Context, metav1.DeleteOptions, metav1.ListOptions) error {
	return errors.New("not used")
}

func (m secretMetadataNS) Patch(context.Context, string, types.PatchType, []byte, metav1.PatchOptions, ...string) (*metav1.PartialObjectMetadata, error) {
	return nil, errors.New("not used")
}

func start(t testing.TB, debounce time.Duration, objs ...runtime.Object) (*fake.Clientset, *recorder, *Source) {
	t.Helper()
	client := fake.NewClientset(objs...)
	src, err := New(Options{Client: client, Metadata: secretMetadata{client}, Model: model.DefaultOptions(), Debounce: debounce, MaxDelay: 20 * debounce})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	rec := newRecorder()
	go func() { done <- src.Run(ctx, rec.onChange) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return client, rec, src
}

// secretReads returns the source's requests on Secrets through its typed
// client, as "verb namespace/name" (name empty for list and watch).
func secretReads(client *fake.Clientset) []string {
	var out []string
	for _, a := range client.Actions() {
		if a.GetResource().Resource != "secrets" {
			continue
		}
		name := ""
		if g, ok := a.(k8stesting.GetAction); ok {
			name = g.GetName()
		}
		out = append(out, a.GetVerb()+" "+a.GetNamespace()+"/"+name)
	}
	return out
}

// TestSecretsReadOnlyWhenReferenced: Secrets are watched as metadata; the
// typed client (which carries data) never lists or watches them and reads
// by GET exactly the ones an Ingress of ours references, once each, and
// again when one changes.
func TestSecretsReadOnlyWhenReferenced(t *testing.T) {
	client, rec, _ := start(t, time.Millisecond,
		ingress("shop", "web", "tidegate", "web-tls"),
		ingress("shop", "theirs", "nginx", "theirs-tls"),
		secret("shop", "web-tls"), secret("shop", "theirs-tls"), secret("shop", "unrelated"),
	)
	s := rec.next(t, "the first snapshot", func(*snapshot.Snapshot) bool { return true })
	if len(s.Ingresses) != 2 {
		t.Errorf("ingresses = %d, want 2 (class filtering is the model's)", len(s.Ingresses))
	}
	if len(s.Secrets) != 1 || s.Secret("shop", "web-tls") == nil {
		t.Fatalf("secrets = %v, want only shop/web-tls (referenced by our Ingress)", s.Secrets)
	}
	sec := s.Secret("shop", "web-tls")
	if string(sec.Data["tls.crt"]) != "crt" {
		t.Errorf("referenced secret lost its data: %v", sec.Data)
	}
	if sec.Annotations[lastApplied] != "" {
		t.Errorf("last-applied copy kept: %v", sec.Annotations)
	}
	if got, want := secretReads(client), []string{"get shop/web-tls"}; !reflect.DeepEqual(got, want) {
		t.Errorf("requests on Secrets with data = %q, want %q", got, want)
	}

	// A Secret that becomes referenced is read then.
	ctx := context.Background()
	if _, err := client.NetworkingV1().Ingresses("shop").Create(ctx, ingress("shop", "late", "tidegate", "unrelated"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.next(t, "shop/unrelated with data", func(s *snapshot.Snapshot) bool {
		sec := s.Secret("shop", "unrelated")
		return sec != nil && string(sec.Data["tls.key"]) == "key"
	})
	if got, want := secretReads(client), []string{"get shop/web-tls", "get shop/unrelated"}; !reflect.DeepEqual(got, want) {
		t.Errorf("requests on Secrets with data = %q, want %q", got, want)
	}
	// Unrelated changes reuse what was read.
	if _, err := client.CoreV1().Services("shop").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "svc"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.next(t, "the service", func(s *snapshot.Snapshot) bool { return s.Service("shop", "svc") != nil })
	if got := secretReads(client); len(got) != 2 {
		t.Errorf("requests on Secrets after an unrelated change = %q, want still 2 GETs", got)
	}
	// A rotated Secret (a new resourceVersion) is read again; a change to
	// an unreferenced one reads nothing.
	rotated := secret("shop", "web-tls")
	rotated.ResourceVersion, rotated.Data["tls.crt"] = "2", []byte("crt-2")
	other := secret("shop", "theirs-tls")
	other.ResourceVersion, other.Data["tls.crt"] = "2", []byte("theirs-2")
	for _, sec := range []*corev1.Secret{other, rotated} {
		if _, err := client.CoreV1().Secrets("shop").Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	rec.next(t, "shop/web-tls rotated", func(s *snapshot.Snapshot) bool {
		sec := s.Secret("shop", "web-tls")
		return sec != nil && string(sec.Data["tls.crt"]) == "crt-2"
	})
	var gets []string
	for _, r := range secretReads(client) {
		if strings.HasPrefix(r, "get ") {
			gets = append(gets, r)
		}
	}
	if want := []string{"get shop/web-tls", "get shop/unrelated", "get shop/web-tls"}; !reflect.DeepEqual(gets, want) {
		t.Errorf("GETs of Secrets = %q, want %q", gets, want)
	}
	if s := rec.next(t, "", func(*snapshot.Snapshot) bool { return true }); s.Secret("shop", "unrelated") == nil || s.Secret("shop", "theirs-tls") != nil {
		t.Errorf("secrets in the last snapshot: %v", s.Secrets)
	}
}

func TestNothingBeforeSyncAndEventsCounted(t *testing.T) {
	// Generous, so that a slow machine (-race) still sees one burst.
	client, rec, src := start(t, 50*time.Millisecond)
	s := rec.next(t, "the first (empty) snapshot", func(*snapshot.Snapshot) bool { return true })
	if len(s.Ingresses) != 0 {
		t.Fatalf("ingresses = %d", len(s.Ingresses))
	}
	ctx := context.Background()
	rec.mu.Lock()
	before := len(rec.snaps)
	rec.mu.Unlock()
	begin := time.Now()
	for i := 0; i < 20; i++ {
		ing := ingress("ns", "burst"+string(rune('a'+i)), "tidegate")
		if _, err := client.NetworkingV1().Ingresses("ns").Create(ctx, ing, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	rec.next(t, "all 20 ingresses", func(s *snapshot.Snapshot) bool { return len(s.Ingresses) == 20 })
	took := time.Since(begin)
	rec.mu.Lock()
	n := len(rec.snaps) - before
	rec.mu.Unlock()
	// Each delivery needs 50ms without events: a burst lasting T gives at
	// most T/50ms+1 (a slow machine spreads the burst; 20 means no debounce).
	if limit := int(took/(50*time.Millisecond)) + 1; n > limit || n >= 20 {
		t.Errorf("%d snapshots for a burst of 20 events over %s: not debounced", n, took)
	}
	var m dto.Metric
	if err := src.Metrics().events.WithLabelValues("Ingress", "add").Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 20 {
		t.Errorf("tidegate_informer_events_total{kind=Ingress,event=add} = %v, want 20", got)
	}
}

// TestEndpointSliceUpdatesPatchTheSnapshot: an EndpointSlice update alone
// is put into the previous snapshot (no listing of every object), and the
// result is what a full snapshot would be; any other event lists again.
func TestEndpointSliceUpdatesPatchTheSnapshot(t *testing.T) {
	port := int32(8080)
	sl := func(name, rv, addr string) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, ResourceVersion: rv,
				Labels: map[string]string{snapshot.ServiceNameLabel: "web"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Port: &port}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{addr}}},
		}
	}
	client, rec, src := start(t, time.Millisecond,
		ingress("shop", "web", "tidegate", "web-tls"), secret("shop", "web-tls"),
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}},
		sl("web-1", "1", "10.0.0.1"), sl("web-2", "1", "10.0.1.1"))
	rec.next(t, "the first snapshot", func(s *snapshot.Snapshot) bool { return len(s.EndpointSlices) == 2 })
	counter := func(c interface{ Write(*dto.Metric) error }) float64 {
		var m dto.Metric
		if err := c.Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	ctx := context.Background()
	addr := func(s *snapshot.Snapshot, name string) string {
		for _, es := range s.EndpointSlicesFor("shop", "web") {
			if es.Name == name && len(es.Endpoints) > 0 {
				return es.Endpoints[0].Addresses[0]
			}
		}
		return ""
	}
	if _, err := client.DiscoveryV1().EndpointSlices("shop").Update(ctx, sl("web-1", "2", "10.0.0.2"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := rec.next(t, "web-1 moved to 10.0.0.2", func(s *snapshot.Snapshot) bool { return addr(s, "web-1") == "10.0.0.2" })
	if got := counter(src.metrics.patched); got < 1 {
		t.Fatalf("tidegate_snapshots_patched_total = %v after an EndpointSlice update, want the snapshot patched", got)
	}
	// What a full snapshot holds: the same objects, the Secret with its data.
	full := src.list(true)
	if len(s.EndpointSlices) != len(full.EndpointSlices) || len(s.Services) != len(full.Services) || len(s.Ingresses) != len(full.Ingresses) {
		t.Fatalf("patched snapshot has %d slices, %d services, %d ingresses; the caches %d, %d, %d",
			len(s.EndpointSlices), len(s.Services), len(s.Ingresses), len(full.EndpointSlices), len(full.Services), len(full.Ingresses))
	}
	for i := range full.EndpointSlices {
		if got, want := s.EndpointSlices[i], full.EndpointSlices[i]; got.Name != want.Name || got.ResourceVersion != want.ResourceVersion {
			t.Errorf("slice %d: patched %s@%s, caches %s@%s", i, got.Name, got.ResourceVersion, want.Name, want.ResourceVersion)
		}
	}
	if addr(s, "web-2") != "10.0.1.1" {
		t.Errorf("the other slice of the Service changed: %q", addr(s, "web-2"))
	}
	if sec := s.Secret("shop", "web-tls"); sec == nil || string(sec.Data["tls.crt"]) != "crt" {
		t.Errorf("the referenced Secret is missing or lost its data in the patched snapshot: %v", sec)
	}
	// Another kind: a full snapshot again.
	before := counter(src.metrics.patched)
	if _, err := client.CoreV1().Services("shop").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s = rec.next(t, "the new service", func(s *snapshot.Snapshot) bool { return s.Service("shop", "api") != nil })
	if got := counter(src.metrics.patched); got != before {
		t.Errorf("a Service event was patched in (tidegate_snapshots_patched_total %v -> %v)", before, got)
	}
	if addr(s, "web-1") != "10.0.0.2" {
		t.Errorf("after a full snapshot web-1 is at %q", addr(s, "web-1"))
	}
}
