package kube

import (
	"context"
	"fmt"
	"log/slog"
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

// strippedAnnotation marks a cached Secret whose data was dropped on arrival
// because no Ingress of ours referenced it then.
const strippedAnnotation = "tidegate.io/data-stripped"

// secretKeeper keeps Secret data in memory only for the Secrets our
// Ingresses reference. The informer's transform strips every other Secret on
// arrival, so a cluster with thousands of Secrets costs their metadata only.
// A Secret that becomes referenced after it was stripped is fetched once
// with a GET (and again only when its resourceVersion moves on); from then
// on the watch delivers it whole.
type secretKeeper struct {
	client kubernetes.Interface
	log    *slog.Logger
	refs   atomic.Pointer[map[string]bool]

	mu      sync.Mutex
	fetched map[string]*corev1.Secret // by namespace/name
}

func newSecretKeeper(c kubernetes.Interface, log *slog.Logger) *secretKeeper {
	k := &secretKeeper{client: c, log: log, fetched: map[string]*corev1.Secret{}}
	k.refs.Store(&map[string]bool{})
	return k
}

func (k *secretKeeper) setReferenced(refs map[string]bool) { k.refs.Store(&refs) }

func (k *secretKeeper) isReferenced(key string) bool { return (*k.refs.Load())[key] }

// strip drops a Secret's data, keeping the metadata the cache needs.
func strip(sec *corev1.Secret) {
	sec.Data, sec.StringData = nil, nil
	if sec.Annotations == nil {
		sec.Annotations = map[string]string{}
	}
	sec.Annotations[strippedAnnotation] = "true"
}

// resolve returns the referenced Secrets with their data, from the cache
// when it holds them whole, else fetched. A Secret that cannot be fetched is
// left out (the model then reports the Ingress's TLS entry) and returned as
// a problem.
func (k *secretKeeper) resolve(ctx context.Context, refs map[string]bool, cached []*corev1.Secret) ([]*corev1.Secret, []model.Problem) {
	var out []*corev1.Secret
	var problems []model.Problem
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, sec := range cached {
		key := snapshot.Key(sec.Namespace, sec.Name)
		if !refs[key] {
			continue
		}
		if sec.Annotations[strippedAnnotation] != "true" {
			delete(k.fetched, key)
			out = append(out, sec)
			continue
		}
		if f := k.fetched[key]; f != nil && f.ResourceVersion == sec.ResourceVersion {
			out = append(out, f)
			continue
		}
		f, err := k.get(ctx, sec.Namespace, sec.Name)
		if err != nil {
			problems = append(problems, model.Problem{Kind: "Secret", Object: key,
				Reason: fmt.Sprintf("referenced by an Ingress but could not be read (%v); check the ClusterRole grants get on secrets", err)})
			continue
		}
		if f == nil {
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

func (k *secretKeeper) get(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sec, err := k.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get secret %s/%s: %w", ns, name, err)
	}
	sec.ManagedFields = nil
	delete(sec.Annotations, lastApplied)
	k.log.Debug("fetched a newly referenced secret", "secret", ns+"/"+name, "resourceVersion", sec.ResourceVersion)
	return sec, nil
}
