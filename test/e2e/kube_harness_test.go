package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidegate/tidegate/pkg/echo"
	"github.com/tidegate/tidegate/test/kubeapi"
	"github.com/tidegate/tidegate/test/netns"
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

// kubeTidegate describes one `tidegate controller` process to start.
type kubeTidegate struct {
	kubeconfig string
	args       []string
	env        []string
}

// startController runs `tidegate controller` with real nginx until its
// /healthz answers 200. It is stopped (SIGINT) at the end of t.
func startController(t testing.TB, k kubeTidegate) *tidegate {
	t.Helper()
	tg := &tidegate{t: t, WorkDir: t.TempDir()}
	tg.run(nil, k.env, "", func() []string {
		return append([]string{"controller", "--kubeconfig", k.kubeconfig, "--workdir", tg.WorkDir,
			"--http-port", strconv.Itoa(tg.HTTPPort), "--https-port", strconv.Itoa(tg.HTTPSPort),
			"--status-port", strconv.Itoa(tg.StatusPt), "--log-level", "debug", "--stop-timeout", "5s"}, k.args...)
	})
	return tg
}

// metric reads one sample (full name with labels, as /metrics prints it).
func (tg *tidegate) metric(series string) float64 {
	tg.t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", tg.StatusPt))
	if err != nil {
		tg.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// logText returns the controller's log so far.
func (tg *tidegate) logText() string { return readFile(tg.t, tg.logPath) }

// waitFor retries f until it returns "" or timeout, then fails t.
func waitFor(t testing.TB, timeout time.Duration, what string, f func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var msg string
	for time.Now().Before(deadline) {
		if msg = f(); msg == "" {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s: still %s after %s", what, msg, timeout)
}

// withTLS adds spec.tls for host with secret to an ingressYAML document.
func withTLS(doc, host, secret string) string {
	return strings.Replace(doc, "  rules:\n", fmt.Sprintf("  tls:\n  - hosts: [%q]\n    secretName: %s\n  rules:\n", host, secret), 1)
}

// hostBackend is an echo server on its own address inside the test run's
// network namespace (see test/netns): the API server refuses loopback
// addresses in EndpointSlices, and test traffic may only go to hosts the
// run itself created.
type hostBackend struct {
	Name, IP string
	Port     int
}

// startHostBackends starts one echo server per name, each on its own
// address of the test namespace and all on the same port (as the endpoints
// of one EndpointSlice port are). They stop at the end of t.
func startHostBackends(t testing.TB, names ...string) []hostBackend {
	t.Helper()
	ns := netns.Acquire(t)
	var out []hostBackend
	port := 0
	for _, name := range names {
		ip := ns.Addr(t)
		ln, err := ns.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("listen on %s in netns %s: %v", ip, ns.Name, err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { echo.ServeListener(ctx, ln, name); close(done) }()
		t.Cleanup(func() { cancel(); <-done; ns.Release(ip) })
		out = append(out, hostBackend{Name: name, IP: ip, Port: port})
	}
	return out
}

// hostSliceYAML is an EndpointSlice of service svc with the backends as
// ready endpoints (all must share a port: a slice has one port list).
func hostSliceYAML(name, svc string, bs ...hostBackend) string {
	var ips []string
	for _, b := range bs {
		ips = append(ips, b.IP)
	}
	return sliceYAML(name, svc, bs[0].Port, ips)
}
