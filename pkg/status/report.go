package status

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/tidegate/tidegate/pkg/annotations"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// ReportReason is the reason of the Events that carry an Ingress's
// ingress-nginx compatibility report: Normal when every annotation was
// applied (possibly with a documented difference), Warning when one was
// ignored or rejected.
const ReportReason = "AnnotationsReport"

// maxReportMessage keeps an Event message within what the API accepts
// comfortably; the log line carries the whole report.
const maxReportMessage = 1000

// reportOrder is the order verdicts are listed in a message.
var reportOrder = []annotations.Status{annotations.Rejected, annotations.Unknown, annotations.Unsupported, annotations.Different, annotations.Applied}

// ReportMessage summarises the compatibility report of one Ingress: each
// annotation (without the prefix) with its verdict, rejections and
// ignored ones with the reason. warning is true when any annotation was
// not applied.
func ReportMessage(entries []annotations.Entry) (msg string, warning bool) {
	by := map[annotations.Status][]string{}
	for _, e := range entries {
		item := e.Key
		switch e.Status {
		case annotations.Rejected, annotations.Unknown, annotations.Unsupported:
			warning = true
			if e.Detail != "" {
				item += " (" + e.Detail + ")"
			}
		}
		by[e.Status] = append(by[e.Status], item)
	}
	var parts []string
	for _, st := range reportOrder {
		if items := by[st]; len(items) > 0 {
			sort.Strings(items)
			parts = append(parts, fmt.Sprintf("%s: %s", st, strings.Join(items, ", ")))
		}
	}
	return "ingress-nginx annotations " + strings.Join(parts, "; "), warning
}

// recordReports records an Event on each Ingress of ours whose
// annotation report changed since the last one recorded in this term of
// leadership, and logs the report as a structured line.
func (w *Writer) recordReports(snap *snapshot.Snapshot, m *model.Model) {
	keys := make([]string, 0, len(m.Compat))
	for k := range m.Compat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	seen := map[string]bool{}
	for _, key := range keys {
		seen[key] = true
		entries := m.Compat[key]
		msg, warning := ReportMessage(entries)
		if w.reports[key] == msg {
			continue
		}
		ns, name, _ := strings.Cut(key, "/")
		var target *networkingv1.Ingress
		for _, ing := range snap.Ingresses {
			if ing.Namespace == ns && ing.Name == name {
				target = ing
				break
			}
		}
		if target == nil {
			continue
		}
		w.reports[key] = msg
		counts := map[annotations.Status]int{}
		for _, e := range entries {
			counts[e.Status]++
		}
		w.log.Info("annotation compatibility report", "ingress", key, "applied", counts[annotations.Applied],
			"applied_with_difference", counts[annotations.Different], "ignored_unsupported", counts[annotations.Unsupported],
			"unknown", counts[annotations.Unknown], "rejected", counts[annotations.Rejected], "report", msg)
		if w.recorder == nil {
			continue
		}
		kind := corev1.EventTypeNormal
		if warning {
			kind = corev1.EventTypeWarning
		}
		if len(msg) > maxReportMessage {
			msg = msg[:maxReportMessage-3] + "..."
		}
		w.recorder.Event(target, kind, ReportReason, msg)
		w.metrics.events.Inc()
	}
	for k := range w.reports {
		if !seen[k] {
			delete(w.reports, k)
		}
	}
}
