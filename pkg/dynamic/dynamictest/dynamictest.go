// Package dynamictest runs a real nginx with tidegate's Lua data plane and
// small HTTP backends, for tests of the push protocol and of balancing.
package dynamictest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	luafiles "github.com/tidegate/tidegate/lua"
	"github.com/tidegate/tidegate/pkg/nginx"
	"github.com/tidegate/tidegate/pkg/tlsutil"
)

// Workers is the number of nginx workers: more than one, so that tests see
// every worker pick up a push.
const Workers = 2

// Nginx is one nginx master started for a test.
type Nginx struct {
	// Dir is the prefix: nginx.conf, lua/, logs, the default certificate.
	Dir string
	// Socket is the control unix socket.
	Socket string
	// Token is the control token every control request carries; it is in
	// run/control.token, where nginx reads it when it starts.
	Token string
	// HTTP and HTTPS are the "127.0.0.1:port" addresses of the proxy.
	HTTP, HTTPS string

	workers int
	conf    map[string]any // confTmpl's data
	cmd     *exec.Cmd
	done    chan struct{}
}

// Locations maps a request path of the test server to a backend name.
type Locations map[string]string

// New writes the working directory and nginx.conf with the tidegate hooks;
// Start runs it. Every path in locs is an exact location proxying to its
// backend.
func New(t testing.TB, locs Locations) *Nginx {
	t.Helper()
	return NewWorkers(t, locs, Workers)
}

// NewWorkers is New with the given number of nginx workers.
func NewWorkers(t testing.TB, locs Locations, workers int) *Nginx {
	t.Helper()
	if _, err := exec.LookPath("nginx"); err != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
			t.Skip("nginx is not installed")
		}
	}
	dir := t.TempDir()
	addrs := freeAddrs(t, 2)
	n := &Nginx{Dir: dir, Socket: filepath.Join(dir, "run", "tidegate.sock"), HTTP: addrs[0], HTTPS: addrs[1],
		workers: workers}
	// The socket's directory is private: nginx creates unix sockets 0666.
	must(t, os.MkdirAll(filepath.Join(dir, "run"), 0o700))
	var err error
	n.Token, _, err = nginx.ControlToken(nginx.Settings{WorkDir: dir}.TokenPath())
	must(t, err)
	for _, d := range []string{"logs", "tmp", "unavailable"} {
		must(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	must(t, fs.WalkDir(luafiles.FS, "tidegate", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, "lua", p)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := luafiles.FS.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	}))
	crt, key, err := tlsutil.SelfSigned("tidegate default certificate")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "default.crt"), crt, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "default.key"), key, 0o600))

	paths := make([]string, 0, len(locs))
	for p := range locs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	n.conf = map[string]any{
		"Dir": dir, "Socket": n.Socket, "HTTP": n.HTTP, "HTTPS": n.HTTPS,
		"Root": os.Geteuid() == 0, "Workers": workers, "Paths": paths, "Locs": locs,
		"LogPhase": false,
	}
	n.writeConf(t)
	return n
}

// WithLogPhase adds the Lua log phase to nginx.conf, as tidegate renders it
// while a backend balances by ewma or ejects on 5xx (model.Structure.LogPhase).
// Call it before Start.
func (n *Nginx) WithLogPhase(t testing.TB) *Nginx {
	t.Helper()
	n.conf["LogPhase"] = true
	n.writeConf(t)
	return n
}

func (n *Nginx) writeConf(t testing.TB) {
	var conf bytes.Buffer
	must(t, confTmpl.Execute(&conf, n.conf))
	must(t, os.WriteFile(filepath.Join(n.Dir, "nginx.conf"), conf.Bytes(), 0o644))
}

// Start runs nginx in the foreground of a child process and waits until it
// serves; t.Cleanup stops it.
func (n *Nginx) Start(t testing.TB) {
	t.Helper()
	bin := "nginx"
	if _, err := exec.LookPath(bin); err != nil {
		bin = "/usr/sbin/nginx"
	}
	n.cmd = exec.Command(bin, "-p", n.Dir, "-c", filepath.Join(n.Dir, "nginx.conf"),
		"-e", filepath.Join(n.Dir, "logs", "error.log"))
	n.cmd.Stdout, n.cmd.Stderr = os.Stderr, os.Stderr
	must(t, n.cmd.Start())
	n.done = make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	t.Cleanup(func() {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(5 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.done
		}
		if t.Failed() {
			t.Logf("nginx error.log:\n%s", n.ErrorLog())
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", n.HTTP, time.Second)
		if err == nil {
			c.Close()
			if len(n.WorkerPIDs()) == n.workers {
				return
			}
		}
		select {
		case <-n.done:
			t.Fatalf("nginx exited: %s", n.ErrorLog())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not start: %v\n%s", err, n.ErrorLog())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// MasterPID is the pid of the nginx master.
func (n *Nginx) MasterPID() int { return n.cmd.Process.Pid }

// WorkerPIDs returns the sorted pids of the master's children (the workers).
func (n *Nginx) WorkerPIDs() []int {
	pids, _ := nginx.WorkerPIDs(n.MasterPID())
	sort.Ints(pids)
	return pids
}

// ErrorLog returns nginx's error log.
func (n *Nginx) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(n.Dir, "logs", "error.log"))
	return string(b)
}

// Get requests path from the proxy and returns the status and body.
func (n *Nginx) Get(t testing.TB, path string) (int, string) {
	t.Helper()
	resp, err := httpClient.Get("http://" + n.HTTP + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// Control sends a raw request, with the control token, to the control
// socket.
func (n *Nginx) Control(t testing.TB, method, path string, body []byte) (int, string) {
	t.Helper()
	return n.ControlType(t, method, path, "", body)
}

// ControlType is Control with a Content-Type header (none if empty).
func (n *Nginx) ControlType(t testing.TB, method, path, contentType string, body []byte) (int, string) {
	t.Helper()
	h := http.Header{nginx.TokenHeader: {n.Token}}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return n.ControlHeader(t, method, path, h, body)
}

// ControlHeader sends a raw request with exactly the headers h (the
// control token only if h has it) to the control socket.
func (n *Nginx) ControlHeader(t testing.TB, method, path string, h http.Header, body []byte) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", n.Socket)
		},
	}, Timeout: 10 * time.Second}
	req, err := http.NewRequest(method, "http://tidegate"+path, bytes.NewReader(body))
	must(t, err)
	req.Header = h.Clone()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// WorkerState is what one nginx worker applied of the pushed backends.
type WorkerState struct {
	ID      int   `json:"id"`
	Version int64 `json:"version"`
	// Rebuilds counts the backend objects the worker built since it
	// started.
	Rebuilds int `json:"rebuilds"`
}

// Workers returns the stored backends version and what every worker
// applied (GET /tidegate/workers on the control socket).
func (n *Nginx) Workers(t testing.TB) (int64, []WorkerState) {
	t.Helper()
	st, body := n.Control(t, "GET", "/tidegate/workers", nil)
	if st != 200 {
		t.Fatalf("GET /tidegate/workers: %d %s", st, body)
	}
	var ans struct {
		Version int64         `json:"version"`
		Workers []WorkerState `json:"workers"`
	}
	if err := json.Unmarshal([]byte(body), &ans); err != nil {
		t.Fatalf("GET /tidegate/workers: %v: %s", err, body)
	}
	return ans.Version, ans.Workers
}

// ServedCertificate does a TLS handshake with the given SNI name and
// returns the leaf certificate's serial number (decimal).
func (n *Nginx) ServedCertificate(t testing.TB, sni string) string {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", n.HTTPS,
		&tls.Config{ServerName: sni, InsecureSkipVerify: true}) //nolint:gosec // we inspect the certificate ourselves
	if err != nil {
		t.Fatalf("TLS handshake with SNI %q: %v", sni, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// Backend is an HTTP server on 127.0.0.1 that answers its name.
type Backend struct {
	Name string
	// Addr is "127.0.0.1"; Port its port.
	Addr    string
	Port    int32
	handler http.Handler

	mu  sync.Mutex
	srv *http.Server
}

// StartBackend starts a backend answering name to every request; t.Cleanup
// stops it.
func StartBackend(t testing.TB, name string) *Backend {
	t.Helper()
	return StartBackendFunc(t, name, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) })
}

// StartSlowBackend starts a backend that waits delay before it answers name.
func StartSlowBackend(t testing.TB, name string, delay time.Duration) *Backend {
	t.Helper()
	return StartBackendFunc(t, name, func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(delay)
		io.WriteString(w, name)
	})
}

// StartBackendFunc starts a backend answering with h; t.Cleanup stops it.
func StartBackendFunc(t testing.TB, name string, h http.HandlerFunc) *Backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	b := &Backend{Name: name, Addr: "127.0.0.1", Port: int32(ln.Addr().(*net.TCPAddr).Port), handler: h}
	b.serve(ln)
	t.Cleanup(b.Kill)
	return b
}

func (b *Backend) serve(ln net.Listener) {
	srv := &http.Server{Handler: b.handler, ReadHeaderTimeout: 5 * time.Second}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Kill closes the listener and every connection: new connections are
// refused, as when a pod dies.
func (b *Backend) Kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.srv.Close()
}

// Restart listens again on the same port after Kill, as a pod that came
// back.
func (b *Backend) Restart(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(b.Addr, strconv.Itoa(int(b.Port))))
	must(t, err)
	b.serve(ln)
}

// Endpoint returns "addr:port", as nginx writes it in $upstream_addr.
func (b *Backend) Endpoint() string { return net.JoinHostPort(b.Addr, strconv.Itoa(int(b.Port))) }

// Do sends req to the proxy (its URL path and query only; the host is the
// proxy's) and returns the response and its body.
func (n *Nginx) Do(t testing.TB, req *http.Request) (*http.Response, string) {
	t.Helper()
	req.URL.Scheme, req.URL.Host = "http", n.HTTP
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return resp, string(b)
}

// freeAddrs returns n distinct free ports on 127.0.0.1 (held open together
// so the kernel cannot hand out the same one twice).
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		must(t, err)
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// confTmpl holds the hooks the real nginx.tmpl uses, and nothing else.
var confTmpl = template.Must(template.New("nginx.conf").Parse(`
{{- if .Root}}user root;
{{end -}}
worker_processes {{.Workers}};
daemon off;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/logs/error.log notice;
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path {{.Dir}}/tmp/body;
  proxy_temp_path {{.Dir}}/tmp/proxy;
  fastcgi_temp_path {{.Dir}}/tmp/fastcgi;
  uwsgi_temp_path {{.Dir}}/tmp/uwsgi;
  scgi_temp_path {{.Dir}}/tmp/scgi;

  lua_package_path "{{.Dir}}/lua/?.lua;;";
  lua_shared_dict tidegate_backends 64m;
  lua_shared_dict tidegate_certificates 16m; # small on purpose: TestCertificatesDictFull
  init_by_lua_block { require("tidegate.init").init() }
  init_worker_by_lua_block { require("tidegate.init").init_worker() }
{{- if .LogPhase}}
  log_by_lua_block { require("tidegate.balancer").log() }
{{- end}}

  ssl_certificate {{.Dir}}/default.crt;
  ssl_certificate_key {{.Dir}}/default.key;
  ssl_certificate_by_lua_block { require("tidegate.certificate").call() }

  upstream tidegate_upstream {
    server 0.0.0.1:1;
    balancer_by_lua_block { require("tidegate.balancer").balance() }
    keepalive 320;
  }

  server {
    listen unix:{{.Socket}};
    default_type application/json;
    set_by_lua_block $tidegate_control_refused { return require("tidegate.control").refusal() }
    if ($tidegate_control_refused) { return 403 $tidegate_control_refused; }
    location = /configuration/backends     { client_max_body_size 64m; client_body_buffer_size 64m; content_by_lua_block { require("tidegate.configuration").backends() } }
    location = /configuration/certificates { client_max_body_size 16m; client_body_buffer_size 16m; content_by_lua_block { require("tidegate.configuration").certificates() } }
    location = /tidegate/workers { content_by_lua_block { require("tidegate.configuration").workers() } }
    location / { set $tidegate_scheme ""; return 404; }
  }

  server {
    listen unix:{{.Dir}}/unavailable/503.sock;
{{- if .LogPhase}}
    log_by_lua_block { }
{{- end}}
    location / { return 503; }
  }

  server {
    listen {{.HTTP}};
    listen {{.HTTPS}} ssl;
    server_name "caas.one";
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_connect_timeout 2s;
    proxy_next_upstream error timeout;
    proxy_next_upstream_tries 3;
{{- range .Paths}}
    location = {{.}} {
      set $tidegate_backend "{{index $.Locs .}}";
      set $tidegate_hash_key $http_x_hash_key;
      proxy_pass http://tidegate_upstream;
    }
{{- end}}
  }
}
`))

// CheckControlAnswer fails t unless the control socket took a push (200),
// refused it as stale (409), or refused it with a reason (400 with an
// "error"): what any body, however broken, must get.
func CheckControlAnswer(t testing.TB, body string, status int, answer string) {
	t.Helper()
	switch status {
	case 200, 409:
	case 400:
		if !strings.Contains(answer, `"error"`) {
			t.Fatalf("400 without a reason: %q", answer)
		}
	default:
		t.Fatalf("POST %q: status %d %q", body, status, answer)
	}
}

// String describes the instance, for logs.
func (n *Nginx) String() string {
	return fmt.Sprintf("nginx pid %d in %s", n.MasterPID(), n.Dir)
}
