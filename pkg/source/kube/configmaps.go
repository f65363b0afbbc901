package kube

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// newConfigMapKeeper keeps the data of the ConfigMaps our Ingresses
// reference (custom-headers, auth-proxy-set-headers); global, the --configmap key, has its own
// informer and is always whole.
func newConfigMapKeeper(c kubernetes.Interface, log *slog.Logger, global string) *keeper[*corev1.ConfigMap] {
	return newKeeper("ConfigMap", " (custom-headers, auth-proxy-set-headers)", log, func(ctx context.Context, ns, name, rv string) (*corev1.ConfigMap, error) {
		return c.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{ResourceVersion: rv})
	}, global)
}

// wholeConfigMap returns a cached ConfigMap that kept its data.
func wholeConfigMap(obj metav1.Object) (*corev1.ConfigMap, bool) {
	cm, ok := obj.(*corev1.ConfigMap)
	return cm, ok && cm.Annotations[strippedAnnotation] != "true"
}

func stripConfigMap(cm *corev1.ConfigMap) {
	cm.Data, cm.BinaryData = nil, nil
	markStripped(cm)
}

// referencedConfigMaps returns the namespace/name of every ConfigMap an
// Ingress of ours names (model.ConfigMapRefs: in its own namespace, the
// model refuses any other).
func referencedConfigMaps(snap *snapshot.Snapshot, opts model.Options) map[string]bool {
	refs := map[string]bool{}
	for _, ing := range model.OurIngresses(snap, opts) {
		for _, key := range model.ConfigMapRefs(ing) {
			refs[key] = true
		}
	}
	return refs
}
