package status

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

func TestServiceAddresses(t *testing.T) {
	tests := map[string]struct {
		svc  corev1.Service
		want string
	}{
		"load balancer ingress, IPs and host names": {corev1.Service{
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.0.0.5"},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
				{IP: "203.0.113.9"}, {Hostname: "lb.example.com"}}}}}, "203.0.113.9,lb.example.com"},
		"load balancer still pending: cluster IP": {corev1.Service{
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.0.0.5"}}, "10.0.0.5"},
		"external IPs win over the cluster IP": {corev1.Service{
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.0.0.5", ExternalIPs: []string{"198.51.100.2", "198.51.100.1"}}},
			"198.51.100.1,198.51.100.2"},
		"external name": {corev1.Service{
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "edge.example.com"}}, "edge.example.com"},
		"headless has none": {corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}}, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := strings.Join(serviceAddresses(&tc.svc), ","); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func ing(name, class string, backend string, status ...string) *networkingv1.Ingress {
	i := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec: networkingv1.IngressSpec{IngressClassName: &class, DefaultBackend: &networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: backend, Port: networkingv1.ServiceBackendPort{Number: 80}}}}}
	for _, s := range status {
		i.Status.LoadBalancer.Ingress = append(i.Status.LoadBalancer.Ingress, networkingv1.IngressLoadBalancerIngress{IP: s})
	}
	return i
}

func TestPassWritesOnlyOursAndOnlyChanges(t *testing.T) {
	ours := ing("ours", "tidegate", "web")
	done := ing("done", "tidegate", "web", "192.0.2.1")
	theirs := ing("theirs", "nginx", "web")
	broken := ing("broken", "tidegate", "missing")
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	client := fake.NewClientset([]runtime.Object{ours, done, theirs, broken, svc}...)
	w, err := New(Config{Client: client, Model: model.DefaultOptions(), PublishAddresses: []string{"192.0.2.1"},
		Election: Election{Namespace: "ns", Name: "lease"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := record.NewFakeRecorder(10)
	w.recorder = rec
	snap := (&snapshot.Snapshot{Ingresses: []*networkingv1.Ingress{ours, done, theirs, broken}, Services: []*corev1.Service{svc}}).Index()
	w.pass(context.Background(), snap)

	var updated []string
	for _, a := range client.Actions() {
		if a.GetVerb() == "update" && a.GetSubresource() == "status" {
			updated = append(updated, a.(interface{ GetObject() runtime.Object }).GetObject().(*networkingv1.Ingress).Name)
		}
	}
	if strings.Join(updated, ",") != "broken,ours" {
		t.Errorf("status updates for %v, want broken and ours (not done: already right; not theirs: other class)", updated)
	}
	got, _ := client.NetworkingV1().Ingresses("ns").Get(context.Background(), "ours", metav1.GetOptions{})
	if s := got.Status.LoadBalancer.Ingress; len(s) != 1 || s[0].IP != "192.0.2.1" {
		t.Errorf("status of ours = %+v", s)
	}

	if len(rec.Events) != 1 {
		t.Fatalf("events = %d, want 1 for the missing service", len(rec.Events))
	}
	if ev := <-rec.Events; !strings.HasPrefix(ev, "Warning Rejected") || !strings.Contains(ev, "ns/missing") {
		t.Errorf("event %q", ev)
	}
	// A standing problem is not recorded again on the next sync.
	w.pass(context.Background(), snap)
	if len(rec.Events) != 0 {
		t.Errorf("the same problem was recorded again: %q", <-rec.Events)
	}
}
