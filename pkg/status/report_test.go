package status

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/tidegate/tidegate/pkg/annotations"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

func TestReportEventsOnChangeOnly(t *testing.T) {
	annotated := ing("annotated", "tidegate", "web")
	annotated.Annotations = map[string]string{annotations.Prefix + "proxy-body-size": "8m", annotations.Prefix + "proxy-bufer-size": "8k"}
	clean := ing("clean", "tidegate", "web")
	clean.Annotations = map[string]string{annotations.Prefix + "proxy-read-timeout": "30"}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	w, err := New(Config{Client: fake.NewClientset(), Model: model.DefaultOptions(), PublishAddresses: []string{"192.0.2.1"},
		Election: Election{Namespace: "ns", Name: "lease"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := record.NewFakeRecorder(10)
	w.recorder = rec
	snap := func(ings ...*networkingv1.Ingress) *snapshot.Snapshot {
		return (&snapshot.Snapshot{Ingresses: ings, Services: []*corev1.Service{svc}}).Index()
	}
	w.recordProblems(snap(annotated, clean))
	got := map[string]string{}
	for len(rec.Events) > 0 {
		ev := <-rec.Events
		got[strings.SplitN(ev, " ", 3)[0]] += ev + "\n"
	}
	if w := got["Warning"]; !strings.Contains(w, "AnnotationsReport") || !strings.Contains(w, "unknown: proxy-bufer-size (") ||
		!strings.Contains(w, "applied: proxy-body-size") {
		t.Errorf("warning events: %q", w)
	}
	if n := got["Normal"]; !strings.Contains(n, "AnnotationsReport ingress-nginx annotations applied: proxy-read-timeout") {
		t.Errorf("normal events: %q", n)
	}
	// The same reports are not recorded again; a changed one is.
	w.recordProblems(snap(annotated, clean))
	if len(rec.Events) != 0 {
		t.Fatalf("an unchanged report was recorded again: %q", <-rec.Events)
	}
	fixed := annotated.DeepCopy()
	delete(fixed.Annotations, annotations.Prefix+"proxy-bufer-size")
	w.recordProblems(snap(fixed, clean))
	if len(rec.Events) != 1 {
		t.Fatalf("events after a change = %d, want 1", len(rec.Events))
	}
	if ev := <-rec.Events; !strings.HasPrefix(ev, "Normal AnnotationsReport") || strings.Contains(ev, "bufer") {
		t.Errorf("event after the fix: %q", ev)
	}
}
