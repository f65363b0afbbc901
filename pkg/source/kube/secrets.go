package kube

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// newSecretKeeper keeps the data of the Secrets our Ingresses reference
// (TLS, auth-secret).
func newSecretKeeper(c kubernetes.Interface, log *slog.Logger) *keeper[*corev1.Secret] {
	return newKeeper("Secret", "", log, func(ctx context.Context, ns, name string) (*corev1.Secret, error) {
		return c.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	})
}

// strip drops a Secret's data, keeping the metadata the cache needs.
func strip(sec *corev1.Secret) {
	sec.Data, sec.StringData = nil, nil
	markStripped(sec)
}
