package kubeapi

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func TestStart(t *testing.T) {
	srv := Start(t)
	t.Logf("apiserver %s ready in %s", srv.URL, srv.StartupTime.Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const ns = "kubeapi-test"
	if _, err := srv.Client.CoreV1().Namespaces().Create(ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cm"},
		Data:       map[string]string{"k": "v"},
	}
	if _, err := srv.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create configmap: %v", err)
	}
	got, err := srv.Client.CoreV1().ConfigMaps(ns).Get(ctx, "cm", metav1.GetOptions{})
	if err != nil || got.Data["k"] != "v" {
		t.Fatalf("get configmap: %v %v", got, err)
	}

	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skipf("kubectl not installed: %v", err)
	}
	out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", srv.Kubeconfig,
		"get", "ns", "-o", "name").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get ns: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "namespace/"+ns) {
		t.Fatalf("kubectl get ns: %q does not list %s", out, ns)
	}

	// A ServiceAccount token authenticates but, under RBAC, has no rights.
	saKubeconfig, err := srv.ServiceAccountKubeconfig(ctx, ns, "tester")
	if err != nil {
		t.Fatal(err)
	}
	out, err = exec.CommandContext(ctx, kubectl, "--kubeconfig", saKubeconfig,
		"auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "system:serviceaccount:"+ns+":tester" {
		t.Fatalf("kubectl auth whoami as SA: %v: %s", err, out)
	}
	token, err := srv.ServiceAccountToken(ctx, ns, "tester")
	if err != nil {
		t.Fatal(err)
	}
	saClient, err := kubernetes.NewForConfig(srv.ConfigForToken(token))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := saClient.CoreV1().ConfigMaps(ns).Get(ctx, "cm", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("SA without RBAC bindings reading a ConfigMap: got %v, want Forbidden", err)
	}
}
