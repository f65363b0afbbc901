package kube

import (
	"context"
	"log/slog"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// CustomHeadersAnnotation names the ConfigMap of response headers an
// Ingress adds (pkg/annotations/headers.go).
const CustomHeadersAnnotation = "nginx.ingress.kubernetes.io/custom-headers"

// newConfigMapKeeper keeps the data of the ConfigMaps our Ingresses
// reference (custom-headers); global, the --configmap key, has its own
// informer and is always whole.
func newConfigMapKeeper(c kubernetes.Interface, log *slog.Logger, global string) *keeper[*corev1.ConfigMap] {
	return newKeeper("ConfigMap", " (custom-headers)", log, func(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
		return c.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	}, global)
}

func stripConfigMap(cm *corev1.ConfigMap) {
	cm.Data, cm.BinaryData = nil, nil
	markStripped(cm)
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
