package kube

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

// Secrets are watched as metadata only (PartialObjectMetadata: the API
// server leaves data out of the list and of every watch event), so a
// cluster's Secrets cost tidegate their names and resourceVersions, and the
// data of a Secret no Ingress of ours references never reaches it. The
// ones referenced (model.SecretRefs, --default-ssl-certificate) are read
// by GET (keeper), and read again when the watch shows a new
// resourceVersion: a renewed certificate is pushed, without a reload.
//
// Metadata still carries annotations: kubectl's last-applied
// configuration of a Secret created with `kubectl apply` holds its data in
// clear. The transform drops it before the cache, but it was received;
// create Secrets with `kubectl create`, server-side apply or a controller
// (cert-manager) to keep their data off the watch entirely.

// newSecretInformer watches the metadata of the Secrets of namespace ("":
// all).
func newSecretInformer(c metadata.Interface, namespace string) cache.SharedIndexInformer {
	return metadatainformer.NewFilteredMetadataInformer(c, corev1.SchemeGroupVersion.WithResource("secrets"), namespace, 0, cache.Indexers{}, nil).Informer()
}

// newSecretKeeper reads the Secrets our Ingresses reference (TLS,
// auth-secret, auth-tls-secret, proxy-ssl-secret). A GET at the cached
// resourceVersion is served from the API server's watch cache.
func newSecretKeeper(c kubernetes.Interface, log *slog.Logger) *keeper[*corev1.Secret] {
	return newKeeper("Secret", "", log, func(ctx context.Context, ns, name, rv string) (*corev1.Secret, error) {
		return c.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{ResourceVersion: rv})
	})
}
