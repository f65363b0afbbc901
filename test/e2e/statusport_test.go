package e2e

import (
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidegate/tidegate/test/harness"
)

// TestStatusPageHidesCredentials: annotation values are shown with what may
// carry a credential hidden (a query token, user information, a snippet's
// header value, a canary header value), in the value column and in the
// reasons that quote rejected values; keys, hosts and header names stay.
func TestStatusPageHidesCredentials(t *testing.T) {
	b := harness.StartBackends(t, "b")
	const (
		token     = "tok3n-QWxhZGRpbg"
		password  = "hunter2-pw"
		apiKey    = "k3y-5f0e2a"
		canaryVal = "beta-7c1d"
		badToken  = "rejected-9b8c"
	)
	users := htpasswdSHA("alice", "s3cret")
	tg := startTidegate(t, map[string]string{
		"config.yaml": configMapYAML("allow-snippet-annotations", "true"),
		"svc.yaml":    harness.ServiceYAML("web", 80),
		"eps.yaml":    harness.SliceYAML("web-1", "web", b.Port, b.Addrs),
		"users.yaml":  opaqueSecretYAML("users", map[string]string{"auth": users + "\n"}),
		"ext.yaml": annotatedIngress("ext", "ext.test", "Prefix", "/", "auth-url=https://auth.example.com/check?token="+token+"&rd=$request_uri",
			"configuration-snippet=add_header X-Api-Key \""+apiKey+"\" always;", "canary-by-header-value="+canaryVal,
			"auth-type=basic", "auth-secret=users"),
		// Rejected: user information is not allowed; the reason quotes the URL.
		"bad.yaml": annotatedIngress("bad", "bad.test", "Prefix", "/", "auth-url=https://bob:"+password+"@auth.example.com/?t="+badToken),
	})
	var page string
	tg.Eventually("the status page lists both Ingresses and the rejection", func() string {
		code, body := tg.getStatus("/")
		page = html.UnescapeString(body)
		if code != 200 {
			return fmt.Sprintf("status %d", code)
		}
		if !strings.Contains(page, "Ingress default/ext") || !strings.Contains(page, `Ingress default/bad <span class="bad">REJECTED`) {
			return "not yet"
		}
		return ""
	})
	for _, secret := range []string{token, password, badToken, apiKey, canaryVal, users, "{SHA}"} {
		if strings.Contains(page, secret) {
			t.Errorf("the status page shows %q:\n%s", secret, grepLines(page, secret))
		}
	}
	for _, want := range []string{
		"auth-url", "https://auth.example.com/check?token=***&rd=$request_uri",
		"https://***@auth.example.com/?t=***", "add_header X-Api-Key *** always;",
		"canary-by-header-value", "auth-secret", "users", "ext.test", "bad.test",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the status page lacks %q", want)
		}
	}
	// The rejection is still explained, quoting the value as the page
	// shows it: in the value column, the problems and the report.
	if n := strings.Count(page, "https://***@auth.example.com/?t=***"); n < 3 {
		t.Errorf("the hidden value appears %d times, want it in the value, the problem and the report's detail:\n%s", n, grepLines(page, "auth.example.com/?t="))
	}
}

// TestStatusPortLoopbackByDefault: `tidegate local` answers on the status
// port at 127.0.0.1 only: another address of the machine refuses the
// connection, and the kernel's socket table shows the bound address.
func TestStatusPortLoopbackByDefault(t *testing.T) {
	tg := startTidegate(t, map[string]string{"svc.yaml": harness.ServiceYAML("a", 80)})
	if code, _ := tg.getStatus("/healthz"); code != 200 {
		t.Fatalf("127.0.0.1: /healthz %d", code)
	}
	if ip := nonLoopbackIP(t); ip != "" {
		if err := dialRefused(ip, tg.StatusPt); err != nil {
			t.Errorf("the machine's address %s: %v", ip, err)
		}
	} else {
		t.Log("this machine has no non-loopback address; the socket table is the proof")
	}
	// 127.0.0.2 is on the loopback interface too, but not 127.0.0.1.
	if err := dialRefused("127.0.0.2", tg.StatusPt); err != nil {
		t.Errorf("127.0.0.2: %v", err)
	}
	if got := listeners(t, tg.StatusPt); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("sockets listening on the status port %d: %q, want only 127.0.0.1", tg.StatusPt, got)
	}
}

// TestStatusAddressFlag: --status-address takes a list of addresses, and
// the status port answers on those and on no other.
func TestStatusAddressFlag(t *testing.T) {
	other := nonLoopbackIP(t)
	if other == "" {
		other = "127.0.0.3"
	}
	tg := startTidegateWith(t, map[string]string{"svc.yaml": harness.ServiceYAML("a", 80)},
		harness.Options{Args: []string{"--status-address", "127.0.0.1," + other}})
	resp, err := http.Get("http://" + net.JoinHostPort(other, strconv.Itoa(tg.StatusPt)) + "/healthz")
	if err != nil {
		t.Fatalf("%s: %v", other, err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("%s: /healthz %d", other, resp.StatusCode)
	}
	if err := dialRefused("127.0.0.4", tg.StatusPt); err != nil {
		t.Errorf("127.0.0.4, not listed: %v", err)
	}
	if got := listeners(t, tg.StatusPt); len(got) != 2 {
		t.Errorf("sockets listening on the status port: %q, want 127.0.0.1 and %s", got, other)
	}
	if log := tg.LogText(); !strings.Contains(log, "127.0.0.1:"+strconv.Itoa(tg.StatusPt)+","+net.JoinHostPort(other, strconv.Itoa(tg.StatusPt))) {
		t.Errorf("the start line does not name the status addresses:\n%s", grepLines(log, "tidegate starting"))
	}

	// An address that is not an IP is refused at start.
	cmd := exec.Command(harness.Bin, "local", "--manifests", t.TempDir(), "--status-address", "localhost")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), `"localhost" is not an IP address`) {
		t.Errorf("--status-address localhost: err %v, output %s", err, out)
	}
}

// nonLoopbackIP returns an IPv4 address of this machine outside loopback,
// or "" when there is none.
func nonLoopbackIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	return ""
}

// dialRefused returns nil when a TCP connection to ip:port is refused.
func dialRefused(ip string, port int) error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, strconv.Itoa(port)), 5*time.Second)
	if err == nil {
		c.Close()
		return errors.New("the connection was accepted")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("want the connection refused, got %v", err)
	}
	return nil
}

// listeners returns the local addresses of the TCP sockets listening on
// port, IPv4 and IPv6, as the kernel lists them (/proc/net/tcp, tcp6).
func listeners(t *testing.T, port int) []string {
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			if f == "/proc/net/tcp6" && errors.Is(err, os.ErrNotExist) {
				continue
			}
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 4 || fs[3] != "0A" { // TCP_LISTEN
				continue
			}
			hexIP, hexPort, _ := strings.Cut(fs[1], ":")
			if p, _ := strconv.ParseUint(hexPort, 16, 16); int(p) != port {
				continue
			}
			out = append(out, procIP(hexIP))
		}
	}
	return out
}

// procIP decodes an address of /proc/net/tcp: 32-bit words in host
// (little-endian) order.
func procIP(h string) string {
	raw := make(net.IP, len(h)/2)
	for i := 0; i < len(raw); i += 4 {
		for j := 0; j < 4; j++ {
			v, _ := strconv.ParseUint(h[2*(i+j):2*(i+j)+2], 16, 8)
			raw[i+3-j] = byte(v)
		}
	}
	return raw.String()
}

// testKubeStatusAddress: `tidegate controller` with POD_IP (the DaemonSet
// sets it from the downward API) listens on the pod's address and on
// loopback, and on no other address.
func testKubeStatusAddress(t *testing.T, c *cluster) {
	const podIP = "127.0.0.3" // on the loopback interface, but not 127.0.0.1
	tg := startController(t, harness.Controller{Kubeconfig: c.Kubeconfig, Env: []string{"POD_IP=" + podIP},
		Args: []string{"--watch-namespace", "statusaddr", "--configmap", "statusaddr/tidegate", "--update-status=false"}})
	resp, err := http.Get("http://" + net.JoinHostPort(podIP, strconv.Itoa(tg.StatusPt)) + "/healthz")
	if err != nil {
		t.Fatalf("POD_IP %s: %v", podIP, err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("POD_IP %s: /healthz %d", podIP, resp.StatusCode)
	}
	if err := dialRefused("127.0.0.4", tg.StatusPt); err != nil {
		t.Errorf("127.0.0.4: %v", err)
	}
	if got := listeners(t, tg.StatusPt); len(got) != 2 {
		t.Errorf("sockets listening on the status port: %q, want %s and 127.0.0.1", got, podIP)
	}
}
