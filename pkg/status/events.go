package status

import (
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// EventReason is the reason of the Warning Events recorded on an Ingress
// whose configuration was rejected in whole or in part.
const EventReason = "Rejected"

// recordProblems records a Warning Event on each Ingress for every problem
// the model reports about it that was not recorded yet in this term of
// leadership. A problem that goes away and comes back is recorded again.
func (w *Writer) recordProblems(snap *snapshot.Snapshot) {
	if w.recorder == nil {
		return
	}
	m := model.Build(snap, w.cfg.Model)
	w.recordReports(snap, m) // report.go
	now := map[string]bool{}
	for _, p := range m.Problems {
		if p.Kind != "Ingress" {
			continue
		}
		s := p.String()
		now[s] = true
		if w.emitted[s] {
			continue
		}
		ns, name, _ := strings.Cut(p.Object, "/")
		for _, ing := range snap.Ingresses {
			if ing.Namespace == ns && ing.Name == name {
				msg := p.Reason
				if p.Field != "" {
					msg = p.Field + ": " + p.Reason
				}
				w.recorder.Event(ing, corev1.EventTypeWarning, EventReason, msg)
				w.metrics.events.Inc()
				break
			}
		}
	}
	w.emitted = now
}
