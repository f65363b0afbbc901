package e2e

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/tidegate/tidegate/pkg/tlsutil"
	"github.com/tidegate/tidegate/test/harness"
	"github.com/tidegate/tidegate/test/kubeapi"
)

// TestKube runs `tidegate controller` against a real kube-apiserver (one,
// shared by the subtests, each in its own namespace) with real nginx.
func TestKube(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a kube-apiserver")
	}
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatalf("kubectl is not installed: %v", err)
	}
	root, err := kubeapi.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	srv := kubeapi.Start(t)
	t.Logf("kube-apiserver + etcd ready in %s", srv.StartupTime.Round(time.Millisecond))
	c := &cluster{Server: srv, t: t, root: root}
	// Our class, and another controller's class.
	c.apply(t, "default", `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: tidegate}
spec: {controller: tidegate.io/ingress-controller}`, `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: other}
spec: {controller: example.com/other}`)

	t.Run("Traffic", func(t *testing.T) { testKubeTraffic(t, c) })
	t.Run("DeployDryRun", func(t *testing.T) { testKubeDeployDryRun(t, c) })
	t.Run("RBAC", func(t *testing.T) { testKubeRBAC(t, c) })
	t.Run("SecretData", func(t *testing.T) { testKubeSecretData(t, c) })
	t.Run("NamespacedRoles", func(t *testing.T) { testKubeNamespacedRoles(t, c) })
	t.Run("StatusAddress", func(t *testing.T) { testKubeStatusAddress(t, c) })
	t.Run("LeaderElection", func(t *testing.T) { testKubeLeaderElection(t, c) })
}

// testKubeTraffic: objects applied with kubectl are served; endpoint changes
// move traffic without a reload; a new Ingress reloads; status and Events
// are written; another class is ignored.
func testKubeTraffic(t *testing.T, c *cluster) {
	const ns = "traffic"
	c.namespace(t, ns)
	a := harness.StartHostBackends(t, "a-1", "a-2")
	c.apply(t, ns, harness.ServiceYAML("web", 80), harness.HostSliceYAML("web-1", "web", a[0]),
		harness.IngressYAML("web", "web.test", "Prefix / web:80"),
		strings.Replace(harness.IngressYAML("theirs", "theirs.test", "Prefix / web:80"), "ingressClassName: tidegate", "ingressClassName: other", 1))

	tg := startController(t, harness.Controller{Kubeconfig: c.Kubeconfig, Args: []string{
		"--watch-namespace", ns, "--configmap", ns + "/tidegate", "--election-id", "tidegate-traffic", "--election-ttl", "4s",
		"--publish-status-address", "198.51.100.10,lb.example.test", "--shutdown-grace-period", "2s"}})

	tg.Eventually("web.test served by a-1", func() string {
		if r := tg.Get("web.test", "/"); r.Status != 200 || r.Name != "a-1" {
			return fmt.Sprintf("%d %q", r.Status, r.Name)
		}
		return ""
	})
	if r := tg.Get("theirs.test", "/"); r.Status != 404 {
		t.Errorf("Ingress of class other: got %d %q, want 404 (ignored)", r.Status, r.Name)
	}

	t.Run("status carries the publish address", func(t *testing.T) {
		harness.WaitFor(t, 15*time.Second, "status of traffic/web", func() string {
			if s := c.statusOf(t, ns, "web"); s != "198.51.100.10,lb.example.test" {
				return fmt.Sprintf("%q", s)
			}
			return ""
		})
		if s := c.statusOf(t, ns, "theirs"); s != "" {
			t.Errorf("status of the other class's Ingress = %q, want none", s)
		}
	})

	t.Run("EndpointSlice update moves traffic without a reload", func(t *testing.T) {
		reloads := tg.SettledReloads()
		workers := tg.Workers()
		ctx := c.ctx(t)
		es, err := c.Client.DiscoveryV1().EndpointSlices(ns).Get(ctx, "web-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The endpoint moves to a-2's address.
		es.Endpoints[0].Addresses = []string{a[1].IP}
		begin := time.Now()
		if _, err := c.Client.DiscoveryV1().EndpointSlices(ns).Update(ctx, es, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		harness.WaitFor(t, 10*time.Second, "traffic to a-2", func() string {
			if r := tg.Get("web.test", "/"); r.Name != "a-2" {
				return fmt.Sprintf("%d %q", r.Status, r.Name)
			}
			return ""
		})
		t.Logf("EndpointSlice update to traffic moved: %s", time.Since(begin).Round(time.Millisecond))
		for i := 0; i < 20; i++ {
			if r := tg.Get("web.test", "/"); r.Name != "a-2" {
				t.Fatalf("request %d after the move went to %d %q", i, r.Status, r.Name)
			}
		}
		if got := tg.Workers(); !reflect.DeepEqual(got, workers) {
			t.Errorf("nginx workers changed from %v to %v: reloaded for an endpoint change", workers, got)
		}
		if got := tg.Reloads(); got != reloads {
			t.Errorf("reloads went from %d to %d for an endpoint change", reloads, got)
		}
	})

	t.Run("a new Ingress reloads and is served", func(t *testing.T) {
		reloads := tg.Reloads()
		c.apply(t, ns, harness.IngressYAML("two", "two.test", "Prefix /two web:80"))
		tg.Eventually("two.test served", func() string {
			if r := tg.Get("two.test", "/two"); r.Status != 200 || r.Name != "a-2" {
				return fmt.Sprintf("%d %q", r.Status, r.Name)
			}
			return ""
		})
		// New workers may answer a moment before the reload is counted.
		harness.WaitFor(t, 5*time.Second, "the reload counted", func() string {
			if got := tg.Reloads(); got <= reloads {
				return fmt.Sprintf("reloads = %d, want > %d after a new host", got, reloads)
			}
			return ""
		})
		harness.WaitFor(t, 15*time.Second, "status of traffic/two", func() string {
			if s := c.statusOf(t, ns, "two"); s != "198.51.100.10,lb.example.test" {
				return fmt.Sprintf("%q", s)
			}
			return ""
		})
	})

	t.Run("a rejected backend gets one Warning Event", func(t *testing.T) {
		c.apply(t, ns, harness.IngressYAML("broken", "broken.test", "Prefix / nope:80"))
		var ev corev1.Event
		harness.WaitFor(t, 15*time.Second, "an Event on traffic/broken", func() string {
			evs, err := c.Client.CoreV1().Events(ns).List(c.ctx(t), metav1.ListOptions{
				FieldSelector: fields.Set{"involvedObject.name": "broken", "involvedObject.kind": "Ingress"}.String()})
			if err != nil {
				return err.Error()
			}
			if len(evs.Items) == 0 {
				return "no event"
			}
			ev = evs.Items[0]
			return ""
		})
		if ev.Type != corev1.EventTypeWarning || ev.Reason != "Rejected" || !strings.Contains(ev.Message, "nope") {
			t.Errorf("event = %s %s %q, want Warning Rejected naming the missing service", ev.Type, ev.Reason, ev.Message)
		}
		// More syncs (an endpoint change, a status write) must not repeat it.
		c.apply(t, ns, harness.HostSliceYAML("web-1", "web", a[0]))
		time.Sleep(1500 * time.Millisecond)
		evs, err := c.Client.CoreV1().Events(ns).List(c.ctx(t), metav1.ListOptions{
			FieldSelector: fields.Set{"involvedObject.name": "broken"}.String()})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs.Items) != 1 || evs.Items[0].Count > 1 {
			t.Errorf("events on traffic/broken after more syncs: %d (count %d), want 1 recorded once", len(evs.Items), evs.Items[0].Count)
		}
	})

	t.Run("the annotation report is an Event naming each annotation's verdict, once per change", func(t *testing.T) {
		c.apply(t, ns, strings.Replace(harness.IngressYAML("annotated", "annotated.test", "Prefix / web:80"), "  name: annotated\n",
			"  name: annotated\n  annotations:\n    nginx.ingress.kubernetes.io/proxy-body-size: 8m\n    nginx.ingress.kubernetes.io/proxy-bufer-size: 8k\n", 1))
		list := func() []corev1.Event {
			evs, err := c.Client.CoreV1().Events(ns).List(c.ctx(t), metav1.ListOptions{
				FieldSelector: fields.Set{"involvedObject.name": "annotated", "reason": "AnnotationsReport"}.String()})
			if err != nil {
				t.Fatal(err)
			}
			return evs.Items
		}
		harness.WaitFor(t, 15*time.Second, "an AnnotationsReport Event on traffic/annotated", func() string {
			if len(list()) == 0 {
				return "no event"
			}
			return ""
		})
		ev := list()[0]
		if ev.Type != corev1.EventTypeWarning || !strings.Contains(ev.Message, "applied: proxy-body-size") ||
			!strings.Contains(ev.Message, "unknown: proxy-bufer-size (not an ingress-nginx annotation tidegate knows; check the spelling)") {
			t.Errorf("event = %s %q, want a Warning naming proxy-body-size applied and proxy-bufer-size unknown", ev.Type, ev.Message)
		}
		if log := grepLines(tg.LogText(), "annotation compatibility report"); !strings.Contains(log, "traffic/annotated") || !(strings.Contains(log, "unknown=1") || strings.Contains(log, `"unknown":1`)) {
			t.Errorf("structured log line: %q", log)
		}
		// Syncs that do not change the report do not repeat it.
		c.apply(t, ns, harness.HostSliceYAML("web-1", "web", a[0]))
		time.Sleep(1500 * time.Millisecond)
		if evs := list(); len(evs) != 1 || evs[0].Count > 1 {
			t.Errorf("report events after more syncs: %d, want 1 recorded once", len(evs))
		}
	})

	t.Run("custom-headers reads a ConfigMap of the Ingress's namespace, referenced late and edited", func(t *testing.T) {
		hdrs := func(v string) string {
			return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: hdrs}\ndata: {X-Team: %q}\n", v)
		}
		// The ConfigMap exists before any Ingress names it: cached without
		// its data, then fetched once referenced.
		c.apply(t, ns, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tidegate}\ndata: {global-allowed-response-headers: X-Team}\n", hdrs("blue"))
		c.apply(t, ns, strings.Replace(harness.IngressYAML("headers", "headers.test", "Prefix / web:80"), "  name: headers\n",
			"  name: headers\n  annotations:\n    nginx.ingress.kubernetes.io/custom-headers: hdrs\n", 1))
		header := func(want string) func() string {
			return func() string {
				if st, h, _ := tg.fetch("http", "headers.test", "/"); st != 200 || h.Get("X-Team") != want {
					return fmt.Sprintf("%d X-Team %q", st, h.Get("X-Team"))
				}
				return ""
			}
		}
		tg.Eventually("X-Team blue", header("blue"))
		c.apply(t, ns, hdrs("green"))
		tg.Eventually("X-Team green after the ConfigMap changed", header("green"))
	})

	if n := tg.Metric(`tidegate_informer_events_total{event="update",kind="EndpointSlice"}`); n < 1 {
		t.Errorf("tidegate_informer_events_total for EndpointSlice updates = %v, want >= 1", n)
	}

	t.Run("SIGTERM: healthz 503 first, traffic during the grace, Lease released", func(t *testing.T) {
		if h := c.leaseHolder(t, ns, "tidegate-traffic"); h == "" {
			t.Fatal("no lease holder before the shutdown")
		}
		if err := tg.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		begin := time.Now()
		harness.WaitFor(t, 2*time.Second, "/healthz 503", func() string {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", tg.StatusPt))
			if err != nil {
				return err.Error()
			}
			resp.Body.Close()
			if resp.StatusCode != 503 {
				return fmt.Sprint(resp.StatusCode)
			}
			return ""
		})
		if r := tg.Get("web.test", "/"); r.Status != 200 {
			t.Errorf("during the grace period: %d %s, want still served", r.Status, r.Body)
		}
		ok, err := tg.Wait(20 * time.Second)
		if !ok {
			t.Fatal("still running 20s after SIGTERM")
		}
		if took := time.Since(begin); took < 2*time.Second {
			t.Errorf("exited after %s, before the 2s grace period", took)
		}
		if err != nil {
			t.Errorf("exit: %v", err)
		}
		if h := c.leaseHolder(t, ns, "tidegate-traffic"); h != "" {
			t.Errorf("lease still held by %q after a graceful stop", h)
		}
	})
}

// testKubeDeployDryRun: the API server accepts every manifest of deploy/.
func testKubeDeployDryRun(t *testing.T, c *cluster) {
	c.namespace(t, "tidegate") // a server dry run creates nothing, the namespace included
	out := c.kubectl(t, "", "apply", "--dry-run=server", "-k", filepath.Join(c.root, "deploy"))
	for _, kind := range []string{"serviceaccount/tidegate", "clusterrole.rbac.authorization.k8s.io/tidegate",
		"ingressclass.networking.k8s.io/tidegate", "daemonset.apps/tidegate", "deployment.apps/default-backend",
		"networkpolicy.networking.k8s.io/tidegate"} {
		if !strings.Contains(out, kind) {
			t.Errorf("dry run output lacks %s:\n%s", kind, out)
		}
	}
}

// testKubeRBAC: the controller works with the deploy/ ServiceAccount's
// token and nothing more: watch every namespace, read a TLS Secret (also one
// referenced only later, and the --default-ssl-certificate one), write
// status, record an Event, hold the Lease.
func testKubeRBAC(t *testing.T, c *cluster) {
	for _, f := range []string{"namespace.yaml", "rbac.yaml", "configmap.yaml", "ingressclass.yaml"} {
		c.kubectl(t, "", "apply", "-f", filepath.Join(c.root, "deploy", f))
	}
	kubeconfig, err := c.ServiceAccountKubeconfig(c.ctx(t), "tidegate", "tidegate")
	if err != nil {
		t.Fatal(err)
	}
	const ns = "rbac"
	c.namespace(t, ns)
	b := harness.StartHostBackends(t, "r-1")
	cert1, key1, err := tlsutil.SelfSigned("one.rbac.test", "one.rbac.test")
	if err != nil {
		t.Fatal(err)
	}
	cert2, key2, err := tlsutil.SelfSigned("two.rbac.test", "two.rbac.test")
	if err != nil {
		t.Fatal(err)
	}
	certD, keyD, err := tlsutil.SelfSigned("default.rbac.test")
	if err != nil {
		t.Fatal(err)
	}
	c.apply(t, ns, harness.ServiceYAML("app", 80), harness.HostSliceYAML("app-1", "app", b[0]),
		tlsSecretYAML("one-tls", cert1, key1), tlsSecretYAML("two-tls", cert2, key2), tlsSecretYAML("default-tls", certD, keyD),
		harness.WithTLS(harness.IngressYAML("one", "one.rbac.test", "Prefix / app:80"), "one.rbac.test", "one-tls"))

	tg := startController(t, harness.Controller{Kubeconfig: kubeconfig, Args: []string{
		"--configmap", "tidegate/tidegate", "--election-ttl", "4s", "--publish-status-address", "198.51.100.20",
		"--default-ssl-certificate", ns + "/default-tls"}})

	if who := c.kubectl(t, "", "--kubeconfig", kubeconfig, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"); who != "system:serviceaccount:tidegate:tidegate" {
		t.Fatalf("the kubeconfig authenticates as %q", who)
	}
	tg.Eventually("one.rbac.test served over TLS with its Secret", func() string {
		if r, cn, _ := tg.GetTLS("one.rbac.test", "/"); r.Status != 200 || cn != "one.rbac.test" {
			return fmt.Sprintf("%d cert %q", r.Status, cn)
		}
		return ""
	})
	tg.Eventually("unknown names served with --default-ssl-certificate", func() string {
		if _, cn, _ := tg.GetTLS("unknown.rbac.test", "/"); cn != "default.rbac.test" {
			return fmt.Sprintf("cert %q", cn)
		}
		return ""
	})
	// A Secret that was stripped on arrival (unreferenced) is fetched when
	// an Ingress starts to reference it.
	c.apply(t, ns, harness.WithTLS(harness.IngressYAML("two", "two.rbac.test", "Prefix / app:80"), "two.rbac.test", "two-tls"))
	tg.Eventually("two.rbac.test served with a Secret referenced late", func() string {
		if r, cn, _ := tg.GetTLS("two.rbac.test", "/"); r.Status != 200 || cn != "two.rbac.test" {
			return fmt.Sprintf("%d cert %q", r.Status, cn)
		}
		return ""
	})
	harness.WaitFor(t, 15*time.Second, "the Lease held and status written", func() string {
		if h := c.leaseHolder(t, "tidegate", "tidegate-leader"); h == "" {
			return "no lease holder"
		}
		if s := c.statusOf(t, ns, "two"); s != "198.51.100.20" {
			return fmt.Sprintf("status %q", s)
		}
		return ""
	})
	// Secrets named by annotations, not by spec.tls: basic-auth users and a
	// client certificate CA are kept whole too.
	ca := newTestCA(t, "RBAC Client CA")
	onApp := func(doc string) string { return strings.ReplaceAll(doc, "name: web", "name: app") }
	c.apply(t, ns, opaqueSecretYAML("users", map[string]string{"auth": htpasswdSHA("alice", "s3cret") + "\n"}), caSecretYAML("client-ca", ca.pem),
		onApp(annotatedIngress("basic", "basic.rbac.test", "Prefix", "/", "auth-type=basic", "auth-secret=users")),
		onApp(annotatedIngress("mtls", "mtls.rbac.test", "Prefix", "/", "auth-tls-secret="+ns+"/client-ca")))
	alice := ca.client(t, "alice")
	tg.Eventually("basic auth and client certificates with Secrets named by annotations", func() string {
		resp, _, err := tg.Fresh("basic.rbac.test", "/", "Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("alice:s3cret")))
		if err != nil {
			return err.Error()
		}
		if resp.StatusCode != 200 {
			return fmt.Sprintf("basic auth: %d", resp.StatusCode)
		}
		if r := tg.mtlsGet("mtls.rbac.test", "mtls.rbac.test", alice); r.Status != 200 {
			return fmt.Sprintf("client certificate: %d", r.Status)
		}
		return ""
	})
	c.apply(t, ns, harness.IngressYAML("broken", "broken.rbac.test", "Prefix / nope:80"))
	harness.WaitFor(t, 15*time.Second, "an Event recorded", func() string {
		evs, err := c.Client.CoreV1().Events(ns).List(c.ctx(t), metav1.ListOptions{
			FieldSelector: fields.Set{"involvedObject.name": "broken"}.String()})
		if err != nil || len(evs.Items) == 0 {
			return fmt.Sprintf("none (%v)", err)
		}
		return ""
	})
	if log := tg.LogText(); strings.Contains(strings.ToLower(log), "forbidden") {
		t.Errorf("the controller was refused something:\n%s", grepLines(log, "forbidden"))
	}
}

// testKubeLeaderElection: of two replicas exactly one holds the Lease and
// writes status; when it dies the other takes over.
func testKubeLeaderElection(t *testing.T, c *cluster) {
	const ns, lease = "ha", "tidegate-ha"
	c.namespace(t, ns)
	b := harness.StartHostBackends(t, "h-1")
	c.apply(t, ns, harness.ServiceYAML("app", 80), harness.HostSliceYAML("app-1", "app", b[0]),
		harness.IngressYAML("app", "ha.test", "Prefix / app:80"))
	// Each replica publishes its own address, so the status tells who wrote.
	addr := map[string]string{"replica-a": "198.51.100.1", "replica-b": "198.51.100.2"}
	replicas := map[string]*tidegate{}
	for _, name := range []string{"replica-a", "replica-b"} {
		replicas[name] = startController(t, harness.Controller{Kubeconfig: c.Kubeconfig, Env: []string{"POD_NAME=" + name},
			Args: []string{"--watch-namespace", ns, "--configmap", ns + "/tidegate", "--election-id", lease,
				"--election-ttl", "4s", "--publish-status-address", addr[name]}})
	}
	for name, tg := range replicas {
		tg.Eventually(name+" serves ha.test", func() string {
			if r := tg.Get("ha.test", "/"); r.Status != 200 {
				return fmt.Sprintf("%d", r.Status)
			}
			return ""
		})
	}
	var leader string
	harness.WaitFor(t, 20*time.Second, "a leader that wrote status", func() string {
		leader = c.leaseHolder(t, ns, lease)
		if addr[leader] == "" {
			return fmt.Sprintf("holder %q", leader)
		}
		if s := c.statusOf(t, ns, "app"); s != addr[leader] {
			return fmt.Sprintf("holder %s, status %q", leader, s)
		}
		return ""
	})
	follower := "replica-a"
	if leader == follower {
		follower = "replica-b"
	}
	t.Logf("leader %s, follower %s", leader, follower)
	// Exactly one: the follower says it does not lead, and over a few of its
	// retry periods the status stays the leader's.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if s := c.statusOf(t, ns, "app"); s != addr[leader] {
			t.Fatalf("status flipped to %q while %s leads", s, leader)
		}
	}
	if got := replicas[leader].Metric("tidegate_leader"); got != 1 {
		t.Errorf("tidegate_leader of %s = %v, want 1", leader, got)
	}
	if got := replicas[follower].Metric("tidegate_leader"); got != 0 {
		t.Errorf("tidegate_leader of %s = %v, want 0", follower, got)
	}

	// The leader dies without a chance to release the Lease.
	dead := replicas[leader]
	begin := time.Now()
	if err := dead.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = dead.Wait(20 * time.Second)
	harness.WaitFor(t, 30*time.Second, "the follower takes over", func() string {
		if h := c.leaseHolder(t, ns, lease); h != follower {
			return fmt.Sprintf("holder %q", h)
		}
		if s := c.statusOf(t, ns, "app"); s != addr[follower] {
			return fmt.Sprintf("status %q", s)
		}
		return ""
	})
	t.Logf("takeover after SIGKILL of the leader: %s (election TTL 4s)", time.Since(begin).Round(time.Millisecond))
	waitNginxGone(t, dead)
	if r := replicas[follower].Get("ha.test", "/"); r.Status != 200 {
		t.Errorf("the new leader serves %d", r.Status)
	}
}

// waitNginxGone ends the nginx of a killed tidegate: it outlives its
// controller (one started again on the same working directory would adopt
// it), and this replica is not started again.
func waitNginxGone(t *testing.T, tg *tidegate) {
	tg.KillNginx()
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(strings.ToLower(l), sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
