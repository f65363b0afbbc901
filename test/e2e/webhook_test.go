package e2e

import (
	"encoding/base64"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/test/harness"
	"github.com/tidegate/tidegate/test/kubeapi"
)

// TestAdmissionWebhook: with tidegate's ValidatingWebhookConfiguration in a
// real kube-apiserver, `kubectl apply` of a hostile Ingress is refused with
// the reason, a conflicting one too, and a good one is admitted.
func TestAdmissionWebhook(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a kube-apiserver")
	}
	root, err := kubeapi.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	srv := kubeapi.Start(t)
	c := &cluster{Server: srv, t: t, root: root}
	c.apply(t, "default", "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: tidegate}\nspec: {controller: tidegate.io/ingress-controller}")
	port := harness.FreePort(t)
	tg := startController(t, harness.Controller{Kubeconfig: srv.Kubeconfig, Args: []string{
		"--admission-webhook-port", fmt.Sprint(port), "--update-status=false"}})
	ca := harness.ReadFile(t, filepath.Join(tg.WorkDir, "admission.crt"))
	c.apply(t, "default", fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: tidegate-test}
webhooks:
- name: validate.ingress.tidegate.io
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 5
  clientConfig:
    url: https://127.0.0.1:%d/validate-ingress
    caBundle: %s
  rules:
  - apiGroups: [networking.k8s.io]
    apiVersions: [v1]
    operations: [CREATE, UPDATE]
    resources: [ingresses]`, port, base64.StdEncoding.EncodeToString([]byte(ca))))

	apply := func(doc string) (string, error) {
		cmd := exec.Command("kubectl", "--kubeconfig", srv.Kubeconfig, "apply", "-n", "default", "-f", "-")
		cmd.Stdin = strings.NewReader(doc)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	c.apply(t, "default", harness.ServiceYAML("web", 80))
	// The webhook configuration takes a moment to reach the API server's
	// admission chain: wait until a good Ingress passes through it.
	var out string
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err = apply(harness.IngressYAML("good", "good.test", "Prefix / web:80"))
		if err == nil && strings.Contains(harness.ReadFile(t, tg.LogPath), `msg="admission review" ingress=default/good`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the good Ingress never went through the webhook: %v\n%s", err, out)
		}
		time.Sleep(300 * time.Millisecond)
	}

	tests := map[string]struct {
		doc  string
		want string
	}{
		"hostile path": {
			doc:  strings.Replace(harness.IngressYAML("evil-path", "evil.test", "ImplementationSpecific /x web:80"), "path: /x\n", "path: \"/x { return 200 pwned; } location /y\"\n", 1),
			want: "contains ' ', which is not allowed in a URI path",
		},
		"hostile annotation": {
			doc:  annotatedIngress("evil-annotation", "evil2.test", "Prefix", "/", "proxy-body-size=1m; load_module /tmp/pwned.so"),
			want: "is not a size such as 512k, 8m or 1g",
		},
		"conflict with an older Ingress": {
			doc:  harness.IngressYAML("late", "good.test", "Prefix / web:80"),
			want: "already served by the older Ingress default/good",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := apply(tc.doc)
			if err == nil {
				t.Fatalf("kubectl apply succeeded; want a refusal:\n%s", out)
			}
			if !strings.Contains(out, "denied the request") || !strings.Contains(out, "tidegate refuses Ingress") || !strings.Contains(out, tc.want) {
				t.Errorf("refusal does not carry the reason %q:\n%s", tc.want, out)
			}
		})
	}
	if out, err := apply(harness.IngressYAML("warned", "warned.test", "Prefix / not-yet:80")); err != nil || !strings.Contains(out, "not found") {
		t.Errorf("an Ingress whose Service does not exist yet must be admitted with a warning: %v\n%s", err, out)
	}
}
