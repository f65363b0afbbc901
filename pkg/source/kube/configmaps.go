package kube

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// CustomHeadersAnnotation names the ConfigMap of response headers an
// Ingress adds (pkg/annotations/headers.go).
const CustomHeadersAnnotation = "nginx.ingress.kubernetes.io/custom-headers"

// configMapKeeper does for the ConfigMaps Ingresses reference
// (custom-headers) what secretKeeper does for Secrets: the watch over the
// watched namespaces keeps every other ConfigMap without its data, and a
// ConfigMap that becomes referenced after it was stripped is fetched once.
type configMapKeeper struct {
	client kubernetes.Interface
	log    *slog.Logger
	// global is the --configmap key: its own informer keeps it whole.
	global string
	refs   atomic.Pointer[map[string]bool]

	mu      sync.Mutex
	fetched map[string]*corev1.ConfigMap
}

func newConfigMapKeeper(c kubernetes.Interface, log *slog.Logger, global string) *configMapKeeper {
	k := &configMapKeeper{client: c, log: log, global: global, fetched: map[string]*corev1.ConfigMap{}}
	k.refs.Store(&map[string]bool{})
	return k
}

func (k *configMapKeeper) setReferenced(refs map[string]bool) { k.refs.Store(&refs) }

// keepWhole reports whether a ConfigMap keeps its data in a cache.
func (k *configMapKeeper) keepWhole(key string) bool { return key == k.global || (*k.refs.Load())[key] }

func stripConfigMap(cm *corev1.ConfigMap) {
	cm.Data, cm.BinaryData = nil, nil
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations[strippedAnnotation] = "true"
}

// referencedConfigMaps returns the namespace/name of every ConfigMap an
// Ingress of ours names in custom-headers (in its own namespace: the model
// refuses any other).
func referencedConfigMaps(snap *snapshot.Snapshot, opts model.Options) map[string]bool {
	refs := map[string]bool{}
	for _, ing := range model.OurIngresses(snap, opts) {
		v := strings.TrimSpace(ing.Annotations[CustomHeadersAnnotation])
		if v == "" {
			continue
		}
		ns, name, qualified := strings.Cut(v, "/")
		if !qualified {
			ns, name = ing.Namespace, v
		}
		if ns == ing.Namespace && name != "" {
			refs[snapshot.Key(ns, name)] = true
		}
	}
	return refs
}

// resolve returns the referenced ConfigMaps with their data (the global
// one is delivered by its own informer and left out here).
func (k *configMapKeeper) resolve(ctx context.Context, refs map[string]bool, cached []*corev1.ConfigMap) ([]*corev1.ConfigMap, []model.Problem) {
	var out []*corev1.ConfigMap
	var problems []model.Problem
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, cm := range cached {
		key := snapshot.Key(cm.Namespace, cm.Name)
		if !refs[key] || key == k.global {
			continue
		}
		if cm.Annotations[strippedAnnotation] != "true" {
			delete(k.fetched, key)
			out = append(out, cm)
			continue
		}
		if f := k.fetched[key]; f != nil && f.ResourceVersion == cm.ResourceVersion {
			out = append(out, f)
			continue
		}
		f, err := k.get(ctx, cm.Namespace, cm.Name)
		if err != nil {
			problems = append(problems, model.Problem{Kind: "ConfigMap", Object: key,
				Reason: fmt.Sprintf("referenced by an Ingress (custom-headers) but could not be read (%v); check the ClusterRole grants get on configmaps", err)})
			continue
		}
		if f == nil {
			continue
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

func (k *configMapKeeper) get(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cm, err := k.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get configmap %s/%s: %w", ns, name, err)
	}
	cm.ManagedFields = nil
	delete(cm.Annotations, lastApplied)
	k.log.Debug("fetched a newly referenced configmap", "configmap", ns+"/"+name, "resourceVersion", cm.ResourceVersion)
	return cm, nil
}
