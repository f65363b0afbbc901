package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/tidegate/tidegate/pkg/tlsutil"
	"github.com/tidegate/tidegate/test/harness"
)

// apiRecorder is a reverse proxy in front of the API server that keeps
// every response body it passes on to the controller, watch streams
// included: what the controller received, byte for byte.
type apiRecorder struct {
	URL string
	// CA verifies the recorder's own certificate: client-go sends a
	// token only over TLS.
	CA  []byte
	mu  sync.Mutex
	exs []*exchange
}

type exchange struct {
	request string // "GET /api/v1/secrets?watch=true Accept: ..."
	body    bytes.Buffer
}

func startAPIRecorder(t *testing.T, c *cluster) *apiRecorder {
	t.Helper()
	target, err := url.Parse(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.CAData)
	r := &apiRecorder{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	proxy.FlushInterval = -1 // watch events pass at once
	// Uncompressed answers, so that what is recorded can be searched (the
	// API server gzips watch streams and large lists when asked to).
	direct := proxy.Director
	proxy.Director = func(req *http.Request) {
		direct(req)
		req.Header.Del("Accept-Encoding")
	}
	proxy.ModifyResponse = func(resp *http.Response) error {
		ex := &exchange{request: resp.Request.Method + " " + resp.Request.URL.RequestURI() + " Accept: " + resp.Request.Header.Get("Accept")}
		r.mu.Lock()
		r.exs = append(r.exs, ex)
		r.mu.Unlock()
		resp.Body = &teeBody{ReadCloser: resp.Body, r: r, ex: ex}
		return nil
	}
	crt, key, err := tlsutil.SelfSigned("127.0.0.1", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: proxy}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	r.URL, r.CA = "https://"+ln.Addr().String(), crt
	return r
}

type teeBody struct {
	io.ReadCloser
	r  *apiRecorder
	ex *exchange
}

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.r.mu.Lock()
	b.ex.body.Write(p[:n])
	b.r.mu.Unlock()
	return n, err
}

// find returns the requests whose responses contained any of needles.
func (r *apiRecorder) find(needles ...string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ex := range r.exs {
		for _, n := range needles {
			if bytes.Contains(ex.body.Bytes(), []byte(n)) {
				out = append(out, ex.request)
				break
			}
		}
	}
	return out
}

// requests returns the requests whose path contains sub.
func (r *apiRecorder) requests(sub string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ex := range r.exs {
		if strings.Contains(ex.request, sub) {
			out = append(out, ex.request)
		}
	}
	return out
}

// kubeconfig writes a kubeconfig that reaches the API server through r
// with token.
func (r *apiRecorder) kubeconfig(t *testing.T, token string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["recorded"] = &clientcmdapi.Cluster{Server: r.URL, CertificateAuthorityData: r.CA}
	cfg.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["recorded"] = &clientcmdapi.Context{Cluster: "recorded", AuthInfo: "sa"}
	cfg.CurrentContext = "recorded"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// createSecret creates a Secret through the API
// (not kubectl apply, whose last-applied annotation would copy the data
// into the metadata: secrets.go in pkg/source/kube says why).
func (c *cluster) createSecret(t *testing.T, sec *corev1.Secret) {
	t.Helper()
	if _, err := c.Client.CoreV1().Secrets(sec.Namespace).Create(c.ctx(t), sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// marked returns the forms a value takes in an API response: raw (YAML,
// protobuf, stringData) and base64 (JSON data).
func marked(v string) []string { return []string{v, base64.StdEncoding.EncodeToString([]byte(v))} }

// testKubeSecretData: the controller, with the deploy/ ServiceAccount,
// serves a referenced TLS Secret and pushes its renewal without a reload,
// and the data of Secrets no Ingress references never reaches it: every
// response the API server sent it (lists, watch streams, GETs) is
// recorded, and none holds their data, while the referenced Secret's data
// is there. Without the metadata-only watch, the initial list and the
// watch events carry every Secret's data.
func testKubeSecretData(t *testing.T, c *cluster) {
	for _, f := range []string{"namespace.yaml", "rbac.yaml"} {
		c.kubectl(t, "", "apply", "-f", filepath.Join(c.root, "deploy", f))
	}
	token, err := c.ServiceAccountToken(c.ctx(t), "tidegate", "tidegate")
	if err != nil {
		t.Fatal(err)
	}
	const ns = "secretdata"
	c.namespace(t, ns)
	c.namespace(t, ns+"-other")
	b := harness.StartHostBackends(t, "s-1")
	crt1, key1, err := tlsutil.SelfSigned("one.secretdata.test", "one.secretdata.test")
	if err != nil {
		t.Fatal(err)
	}
	const (
		served    = "served-marker-3f9a1c"
		unused    = "unused-marker-7d2e44"
		unusedNew = "unused-update-marker-91ab0e"
		late      = "late-marker-c4d8f2"
		elsewhere = "elsewhere-marker-5e6f70"
	)
	c.createSecret(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "one-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": crt1, "tls.key": key1, "note": []byte(served)}})
	c.createSecret(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unused-b3f1"}, Data: map[string][]byte{"token": []byte(unused)}})
	c.createSecret(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns + "-other", Name: "elsewhere"}, Data: map[string][]byte{"token": []byte(elsewhere)}})
	c.apply(t, ns, harness.ServiceYAML("app", 80), harness.HostSliceYAML("app-1", "app", b[0]),
		harness.WithTLS(harness.IngressYAML("one", "one.secretdata.test", "Prefix / app:80"), "one.secretdata.test", "one-tls"))

	rec := startAPIRecorder(t, c)
	tg := startController(t, harness.Controller{Kubeconfig: rec.kubeconfig(t, token), Args: []string{
		"--configmap", ns + "/tidegate", "--update-status=false"}})
	var serial1 string
	tg.Eventually("one.secretdata.test served with its Secret", func() string {
		r, cn, serial := tg.GetTLS("one.secretdata.test", "/")
		if r.Status != 200 || cn != "one.secretdata.test" {
			return fmt.Sprintf("%d cert %q", r.Status, cn)
		}
		serial1 = serial
		return ""
	})

	t.Run("a renewed certificate is pushed, without a reload", func(t *testing.T) {
		reloads, workers := tg.SettledReloads(), tg.Workers()
		crt2, key2, err := tlsutil.SelfSigned("one.secretdata.test", "one.secretdata.test")
		if err != nil {
			t.Fatal(err)
		}
		sec, err := c.Client.CoreV1().Secrets(ns).Get(c.ctx(t), "one-tls", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sec.Data["tls.crt"], sec.Data["tls.key"] = crt2, key2
		if _, err := c.Client.CoreV1().Secrets(ns).Update(c.ctx(t), sec, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		tg.Eventually("the renewed certificate served", func() string {
			if _, _, serial := tg.GetTLS("one.secretdata.test", "/"); serial == serial1 {
				return "still serial " + serial
			}
			return ""
		})
		if got := tg.Workers(); !reflect.DeepEqual(got, workers) {
			t.Errorf("nginx workers changed from %v to %v: reloaded for a certificate renewal", workers, got)
		}
		if got := tg.Reloads(); got != reloads {
			t.Errorf("reloads went from %d to %d for a certificate renewal", reloads, got)
		}
	})

	t.Run("unreferenced Secrets' data never reaches the controller", func(t *testing.T) {
		// Through the watch too: one more Secret created and one changed
		// while the controller runs.
		added := tg.Metric(`tidegate_informer_events_total{event="add",kind="Secret"}`)
		updated := tg.Metric(`tidegate_informer_events_total{event="update",kind="Secret"}`)
		c.createSecret(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "late-a9c2"}, Data: map[string][]byte{"token": []byte(late)}})
		sec, err := c.Client.CoreV1().Secrets(ns).Get(c.ctx(t), "unused-b3f1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sec.Data["token"] = []byte(unusedNew)
		if _, err := c.Client.CoreV1().Secrets(ns).Update(c.ctx(t), sec, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		harness.WaitFor(t, 15*time.Second, "the controller saw both Secret events", func() string {
			if a, u := tg.Metric(`tidegate_informer_events_total{event="add",kind="Secret"}`), tg.Metric(`tidegate_informer_events_total{event="update",kind="Secret"}`); a <= added || u <= updated {
				return fmt.Sprintf("adds %v (was %v), updates %v (was %v)", a, added, u, updated)
			}
			return ""
		})
		// The recording sees what flows: the names of the unreferenced
		// Secrets in the watch stream, the referenced Secret's data in its
		// GETs.
		for _, name := range []string{"unused-b3f1", "late-a9c2"} {
			if got := rec.find(name); len(got) == 0 {
				t.Fatalf("the Secret %s is named in no recorded response; requests on secrets: %q", name, rec.requests("secrets"))
			}
		}
		if got := rec.find(marked(served)...); len(got) == 0 {
			t.Fatalf("the referenced Secret's data is in no recorded response; requests on secrets: %q", rec.requests("secrets"))
		} else {
			t.Logf("the referenced Secret's data came with %q", got)
		}
		for _, m := range []string{unused, unusedNew, late, elsewhere} {
			if got := rec.find(marked(m)...); len(got) > 0 {
				t.Errorf("the data of an unreferenced Secret (%s) reached the controller with %q", m, got)
			}
		}
		for _, r := range rec.requests("/secrets") {
			if strings.HasPrefix(r, "GET ") && !strings.Contains(r, "/secrets/") && !strings.Contains(r, "as=PartialObjectMetadata") {
				t.Errorf("Secrets listed or watched with their data: %s", r)
			}
		}
		t.Logf("requests on secrets: %q", rec.requests("/secrets"))
	})
	if log := tg.LogText(); strings.Contains(strings.ToLower(log), "forbidden") {
		t.Errorf("the controller was refused something:\n%s", grepLines(log, "forbidden"))
	}
}

// testKubeNamespacedRoles: with --watch-namespace the controller needs no
// cluster-wide access to namespaced objects: the rules of deploy/'s
// ClusterRole, granted by a Role in the watched namespace (IngressClasses,
// cluster-scoped, by a ClusterRole), serve a TLS host whose Secret is read
// by GET and watched as metadata.
func testKubeNamespacedRoles(t *testing.T, c *cluster) {
	const ns = "scoped"
	c.namespace(t, ns)
	var rules []rbacv1.PolicyRule
	data, err := os.ReadFile(filepath.Join(c.root, "deploy", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var cr rbacv1.ClusterRole
		if err := sigsyaml.Unmarshal([]byte(doc), &cr); err != nil {
			t.Fatal(err)
		}
		if cr.Kind == "ClusterRole" && cr.Name == "tidegate" {
			rules = cr.Rules
		}
	}
	var namespaced, clusterWide []rbacv1.PolicyRule
	for _, r := range rules {
		switch {
		case reflect.DeepEqual(r.Resources, []string{"nodes"}):
			// status from node addresses: off here (--update-status=false)
		case len(r.Resources) == 2 && r.Resources[1] == "ingressclasses":
			clusterWide = append(clusterWide, rbacv1.PolicyRule{APIGroups: r.APIGroups, Resources: []string{"ingressclasses"}, Verbs: r.Verbs})
			namespaced = append(namespaced, rbacv1.PolicyRule{APIGroups: r.APIGroups, Resources: []string{"ingresses"}, Verbs: r.Verbs})
		default:
			namespaced = append(namespaced, r)
		}
	}
	if len(namespaced) < 5 || len(clusterWide) != 1 {
		t.Fatalf("deploy/rbac.yaml's ClusterRole split into %d namespaced and %d cluster-wide rules: %v", len(namespaced), len(clusterWide), rules)
	}
	ctx := c.ctx(t)
	rb := c.Client.RbacV1()
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "scoped"}}
	if _, err := rb.Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "scoped"}, Rules: namespaced}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rb.RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "scoped"}, Subjects: subject,
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "scoped"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rb.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "scoped-classes"}, Rules: clusterWide}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rb.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "scoped-classes"}, Subjects: subject,
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "scoped-classes"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := c.ServiceAccountKubeconfig(ctx, ns, "scoped")
	if err != nil {
		t.Fatal(err)
	}
	b := harness.StartHostBackends(t, "n-1")
	crt, key, err := tlsutil.SelfSigned("tls.scoped.test", "tls.scoped.test")
	if err != nil {
		t.Fatal(err)
	}
	c.createSecret(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": crt, "tls.key": key}})
	c.apply(t, ns, harness.ServiceYAML("app", 80), harness.HostSliceYAML("app-1", "app", b[0]),
		harness.WithTLS(harness.IngressYAML("tls", "tls.scoped.test", "Prefix / app:80"), "tls.scoped.test", "tls"))
	tg := startController(t, harness.Controller{Kubeconfig: kubeconfig, Args: []string{
		"--watch-namespace", ns, "--configmap", ns + "/tidegate", "--update-status=false"}})
	tg.Eventually("tls.scoped.test served with its Secret", func() string {
		if r, cn, _ := tg.GetTLS("tls.scoped.test", "/"); r.Status != 200 || cn != "tls.scoped.test" {
			return fmt.Sprintf("%d cert %q", r.Status, cn)
		}
		return ""
	})
	if log := tg.LogText(); strings.Contains(strings.ToLower(log), "forbidden") {
		t.Errorf("the controller was refused something:\n%s", grepLines(log, "forbidden"))
	}
}
