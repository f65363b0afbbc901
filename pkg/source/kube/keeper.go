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

// fetchWorkers bounds the GETs in flight while resolving: at start every
// referenced Secret is read one by one.
const fetchWorkers = 16

// keeper holds the data of one kind of object (Secrets, ConfigMaps) only
// for the objects our Ingresses reference. Its informer caches the others
// without their data: Secrets arrive as metadata only (secrets.go), so no
// Secret's data crosses the wire unless it is referenced; ConfigMaps arrive
// whole and the transform strips the unreferenced ones. A referenced object
// that its cache holds without data is read with a GET, and read again
// only when the cache shows a new resourceVersion for it.
type keeper[T interface {
	metav1.Object
	comparable
}] struct {
	kind string // "Secret", "ConfigMap": for messages
	// why says what references such objects, for messages.
	why string
	// get fetches one object at least as new as resourceVersion (the
	// cache's, "" for the latest); the zero T when it does not exist.
	get func(ctx context.Context, ns, name, resourceVersion string) (T, error)
	// always are keys kept whole whether referenced or not.
	always map[string]bool
	log    *slog.Logger
	refs   atomic.Pointer[map[string]bool]

	mu      sync.Mutex
	fetched map[string]fetched[T] // by namespace/name
}

// fetched is an object read by GET, and the resourceVersion its cache
// showed then: the GET may return a newer one than the watch has seen.
type fetched[T any] struct {
	obj    T
	cached string
}

func newKeeper[T interface {
	metav1.Object
	comparable
}](kind, why string, log *slog.Logger, get func(context.Context, string, string, string) (T, error), always ...string) *keeper[T] {
	k := &keeper[T]{kind: kind, why: why, get: get, always: map[string]bool{}, log: log, fetched: map[string]fetched[T]{}}
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

// resolve returns the referenced objects with their data: the cached
// object itself when whole says it holds its data, else the object read by
// GET. Keys kept whole regardless are left out (their own informer
// delivers them). An object that cannot be read is left out (the model
// then reports what needed it) and returned as a problem.
func (k *keeper[T]) resolve(ctx context.Context, refs map[string]bool, cached []metav1.Object, whole func(metav1.Object) (T, bool)) ([]T, []model.Problem) {
	var out []T
	var problems []model.Problem
	var zero T
	k.mu.Lock()
	defer k.mu.Unlock()
	seen := map[string]bool{}
	var need []metav1.Object
	for _, obj := range cached {
		key := obj.GetNamespace() + "/" + obj.GetName()
		if !refs[key] || k.always[key] {
			continue
		}
		seen[key] = true
		if whole != nil {
			if t, ok := whole(obj); ok {
				delete(k.fetched, key)
				out = append(out, t)
				continue
			}
		}
		if f, ok := k.fetched[key]; ok && f.cached == obj.GetResourceVersion() {
			out = append(out, f.obj)
			continue
		}
		need = append(need, obj)
	}
	got, errs := k.fetchAll(ctx, need)
	for i, obj := range need {
		key := obj.GetNamespace() + "/" + obj.GetName()
		if errs[i] != nil {
			problems = append(problems, model.Problem{Kind: k.kind, Object: key,
				Reason: fmt.Sprintf("referenced by an Ingress%s but could not be read (%v); check that tidegate's Role or ClusterRole grants get on %ss", k.why, errs[i], strings.ToLower(k.kind))})
			continue
		}
		if got[i] == zero {
			delete(k.fetched, key)
			continue // deleted meanwhile: the watch will say so
		}
		k.fetched[key] = fetched[T]{obj: got[i], cached: obj.GetResourceVersion()}
		out = append(out, got[i])
	}
	for key := range k.fetched {
		if !seen[key] {
			delete(k.fetched, key)
		}
	}
	return out, problems
}

// fetchAll reads objs with up to fetchWorkers GETs in flight.
func (k *keeper[T]) fetchAll(ctx context.Context, objs []metav1.Object) ([]T, []error) {
	got, errs := make([]T, len(objs)), make([]error, len(objs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(fetchWorkers, len(objs)) {
		wg.Go(func() {
			for i := range next {
				got[i], errs[i] = k.fetch(ctx, objs[i].GetNamespace(), objs[i].GetName(), objs[i].GetResourceVersion())
			}
		})
	}
	for i := range objs {
		next <- i
	}
	close(next)
	wg.Wait()
	return got, errs
}

func (k *keeper[T]) fetch(ctx context.Context, ns, name, resourceVersion string) (T, error) {
	var zero T
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	obj, err := k.get(ctx, ns, name, resourceVersion)
	if apierrors.IsNotFound(err) {
		return zero, nil
	}
	if err != nil {
		return zero, fmt.Errorf("get %s %s/%s: %w", strings.ToLower(k.kind), ns, name, err)
	}
	obj.SetManagedFields(nil)
	a := obj.GetAnnotations()
	delete(a, lastApplied)
	k.log.Debug("read a referenced object", "kind", k.kind, "object", ns+"/"+name, "resourceVersion", obj.GetResourceVersion())
	return obj, nil
}
