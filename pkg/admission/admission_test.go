package admission

import (
	"bytes"
	stdjson "encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
)

func review(t *testing.T, w *Webhook, obj any) *admissionv1.AdmissionResponse {
	t.Helper()
	raw, _ := stdjson.Marshal(obj)
	req := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: types.UID("u1"), Kind: metav1.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress"},
			Namespace: "default", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}}}
	body, _ := stdjson.Marshal(req)
	rec := httptest.NewRecorder()
	w.ServeHTTP(rec, httptest.NewRequest("POST", Path, bytes.NewReader(body)))
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var out admissionv1.AdmissionReview
	if err := stdjson.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil || out.Response.UID != "u1" {
		t.Fatalf("bad answer %s: %v", rec.Body, err)
	}
	return out.Response
}

func TestReview(t *testing.T) {
	w := New(model.DefaultOptions(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.Update(fixture.Snapshot(fixture.Service("web", "80"), fixture.Ingress("owner").Host("taken.io").Prefix("/", "web:80")))
	tests := map[string]struct {
		ing         *fixture.IngressBuilder
		allowed     bool
		wantMessage string
		wantWarning string
	}{
		"a good Ingress is admitted": {ing: fixture.Ingress("ok").Host("a.io").Prefix("/", "web:80"), allowed: true},
		"a hostile path is refused with the reason": {
			ing:         fixture.Ingress("evil").Host("a.io").Specific("/x { return 200 pwned; }", "web:80"),
			wantMessage: "spec.rules[0].http.paths[0].path: path \"/x { return 200 pwned; }\" contains ' '",
		},
		"a hostile annotation is refused": {
			ing:         fixture.Ingress("evil").Annotate("nginx.ingress.kubernetes.io/proxy-body-size", "1m; load_module /tmp/x.so").Host("a.io").Prefix("/", "web:80"),
			wantMessage: "is not a size",
		},
		"a conflict with an older Ingress is refused": {
			ing:         fixture.Ingress("late").Host("taken.io").Prefix("/", "web:80"),
			wantMessage: "already served by the older Ingress default/owner",
		},
		"a missing Service only warns": {
			ing: fixture.Ingress("soon").Host("b.io").Prefix("/", "later:80"), allowed: true, wantWarning: "service default/later not found",
		},
		"another class is not ours to judge": {
			ing: fixture.Ingress("theirs").Class("nginx").Host("c.io").Specific("/x {", "web:80"), allowed: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ing := tc.ing.Ingress.DeepCopy()
			ing.CreationTimestamp = metav1.Time{}
			r := review(t, w, ing)
			if r.Allowed != tc.allowed {
				t.Fatalf("allowed=%v, want %v (%+v)", r.Allowed, tc.allowed, r.Result)
			}
			if tc.wantMessage != "" && (r.Result == nil || !strings.Contains(r.Result.Message, tc.wantMessage)) {
				t.Errorf("message %+v lacks %q", r.Result, tc.wantMessage)
			}
			if tc.wantWarning != "" && !strings.Contains(strings.Join(r.Warnings, "\n"), tc.wantWarning) {
				t.Errorf("warnings %q lack %q", r.Warnings, tc.wantWarning)
			}
		})
	}
}

func TestBodyIsCapped(t *testing.T) {
	w := New(model.DefaultOptions(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	rec := httptest.NewRecorder()
	w.ServeHTTP(rec, httptest.NewRequest("POST", Path, bytes.NewReader(make([]byte, MaxBody+10))))
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	w.ServeHTTP(rec, httptest.NewRequest("GET", Path, nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", rec.Code)
	}
}
