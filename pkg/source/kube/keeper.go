package kube

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidegate/tidegate/pkg/model"
)

// strippedAnnotation marks a cached object whose data was dropped on
// arrival because no Ingress of ours referenced it then.
const strippedAnnotation = "tidegate.io/data-stripped"

// keeper keeps the data of one kind of object (Secrets, ConfigMaps) in
// memory only for the objects our Ingresses reference. The informer's
// transform strips every other one on arrival, so a cluster with thousands
// of them costs their metadata only. An object that becomes referenced
// after it was stripped is fetched once with a GET (and again only when
// its resourceVersion moves on); from then on the watch delivers it whole.
type keeper[T interface {
	metav1.Object
	comparable
}] struct {
	kind string // "Secret", "ConfigMap": for messages
	// why says what references such objects, for messages.
	why string
	// get fetches one object; the zero T when it does not exist.
	get func(ctx context.Context, ns, name string) (T, error)
	// always are keys kept whole whether referenced or not.
	always map[string]bool
	log    *slog.Logger
	refs   atomic.Pointer[map[string]bool]

	mu      sync.Mutex
	fetched map[string]T // by namespace/name
}

func newKeeper[T interface {
	metav1.Object
	comparable
}](kind, why string, log *slog.Logger, get func(context.Context, string, string) (T, error), always ...string) *keeper[T] {
	k := &keeper[T]{kind: kind, why: why, get: get, always: map[string]bool{}, log: log, fetched: map[string]T{}}
	for _, a := range always {
		k.always[a] = true
	}
	k.refs.Store(&map[string]bool{})
	return k
}

func (k *keeper[T]) setReferenced(refs map[string]bool) { k.refs.Store(&refs) }

// keepWhole reports whether an object keeps its data in a cache.
func (k *keeper[T]) keepWhole(key string) bool { return k.always[key] || (*k.refs.Load())[key] }

// markStripped records on an object that strip dropped its data.
func markStripped(m metav1.Object) {
	a := m.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[strippedAnnotation] = "true"
	m.SetAnnotations(a)
}

// resolve returns the referenced objects with their data, from the cache
// when it holds them whole, else fetched. Keys kept whole regardless are
// left out (their own informer delivers them). An object that cannot be
// fetched is left out (the model then reports what needed it) and returned
// as a problem.
func (k *keeper[T]) resolve(ctx context.Context, refs map[string]bool, cached []T) ([]T, []model.Problem) {
	var out []T
	var problems []model.Problem
	var zero T
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, obj := range cached {
		key := obj.GetNamespace() + "/" + obj.GetName()
		if !refs[key] || k.always[key] {
			continue
		}
		if obj.GetAnnotations()[strippedAnnotation] != "true" {
			delete(k.fetched, key)
			out = append(out, obj)
			continue
		}
		if f, ok := k.fetched[key]; ok && f.GetResourceVersion() == obj.GetResourceVersion() {
			out = append(out, f)
			continue
		}
		f, err := k.fetch(ctx, obj.GetNamespace(), obj.GetName())
		if err != nil {
			problems = append(problems, model.Problem{Kind: k.kind, Object: key,
				Reason: fmt.Sprintf("referenced by an Ingress%s but could not be read (%v); check the ClusterRole grants get on %ss", k.why, err, strings.ToLower(k.kind))})
			continue
		}
		if f == zero {
			continue // deleted meanwhile: the watch will say so
		}
		k.fetched[key] = f
		out = append(out, f)
	}
	for key := range k.fetched {
		if !refs[key] {
			delete(k.fetched, key)
		}
	}
	return out, problems
}

func (k *keeper[T]) fetch(ctx context.Context, ns, name string) (T, error) {
	var zero T
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	obj, err := k.get(ctx, ns, name)
	if apierrors.IsNotFound(err) {
		return zero, nil
	}
	if err != nil {
		return zero, fmt.Errorf("get %s %s/%s: %w", strings.ToLower(k.kind), ns, name, err)
	}
	obj.SetManagedFields(nil)
	a := obj.GetAnnotations()
	delete(a, lastApplied)
	k.log.Debug("fetched a newly referenced object", "kind", k.kind, "object", ns+"/"+name, "resourceVersion", obj.GetResourceVersion())
	return obj, nil
}
