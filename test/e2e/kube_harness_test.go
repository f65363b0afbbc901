package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidegate/tidegate/test/kubeapi"
)

// cluster is one real kube-apiserver shared by the subtests of TestKube.
type cluster struct {
	*kubeapi.Server
	t    *testing.T
	root string // repository root, for deploy/
}

func (c *cluster) ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// kubectl runs kubectl with the admin kubeconfig (or the one in args) and
// fails t on error; stdin is the manifest for "-f -".
func (c *cluster) kubectl(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	if len(args) < 2 || args[0] != "--kubeconfig" {
		args = append([]string{"--kubeconfig", c.Kubeconfig}, args...)
	}
	cmd := exec.Command("kubectl", args...)
	cmd.Dir = c.root
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args[2:], " "), err, out)
	}
	return string(out)
}

// apply is `kubectl apply -n ns -f -` of the given documents.
func (c *cluster) apply(t testing.TB, ns string, docs ...string) {
	t.Helper()
	c.kubectl(t, strings.Join(docs, "\n---\n"), "apply", "-n", ns, "-f", "-")
}

// namespace creates a namespace (if missing).
func (c *cluster) namespace(t testing.TB, ns string) {
	t.Helper()
	_, err := c.Client.CoreV1().Namespaces().Create(c.ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
}

// ingress reads an Ingress.
func (c *cluster) ingress(t testing.TB, ns, name string) *networkingv1.Ingress {
	t.Helper()
	ing, err := c.Client.NetworkingV1().Ingresses(ns).Get(c.ctx(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get ingress %s/%s: %v", ns, name, err)
	}
	return ing
}

// statusOf lists an Ingress's .status.loadBalancer.ingress as "ip" or
// "hostname" strings, comma-separated.
func (c *cluster) statusOf(t testing.TB, ns, name string) string {
	var out []string
	for _, e := range c.ingress(t, ns, name).Status.LoadBalancer.Ingress {
		out = append(out, e.IP+e.Hostname)
	}
	return strings.Join(out, ",")
}

// leaseHolder returns the holder identity of the Lease ns/name, "" if none.
func (c *cluster) leaseHolder(t testing.TB, ns, name string) string {
	t.Helper()
	l, err := c.Client.CoordinationV1().Leases(ns).Get(c.ctx(t), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatalf("get lease %s/%s: %v", ns, name, err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}
