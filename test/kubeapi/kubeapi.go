// Package kubeapi runs a real etcd + kube-apiserver (built by
// test/tools/build.sh into <repo>/bin) for tests that need a Kubernetes API.
//
// Typical use:
//
//	srv := kubeapi.Start(t)          // stopped automatically via t.Cleanup
//	srv.Client.CoreV1().Namespaces().Create(...)
//	exec.Command("kubectl", "--kubeconfig", srv.Kubeconfig, "get", "ns")
//
// If the binaries are missing the test fails with a message naming
// test/tools/build.sh, unless TIDEGATE_SKIP_KUBE=1 is set, in which case it
// is skipped.
package kubeapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	// EnvSkip, when "1", turns missing binaries into a t.Skip instead of a failure.
	EnvSkip = "TIDEGATE_SKIP_KUBE"
	// EnvBinDir overrides the directory holding etcd and kube-apiserver.
	EnvBinDir = "TIDEGATE_BIN"

	mainModule = "github.com/tidegate/tidegate"
	// ServiceAccountIssuer is the --service-account-issuer of the apiserver.
	ServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
	// ServiceClusterIPRange is the --service-cluster-ip-range of the apiserver.
	ServiceClusterIPRange = "10.0.0.0/24"
)

// Options tune New/StartWith. The zero value is fine.
type Options struct {
	// BinDir holds etcd and kube-apiserver. Default: $TIDEGATE_BIN, else
	// <repo>/bin where <repo> is found by walking up from the working dir.
	BinDir string
	// Dir receives data, certs, kubeconfig and logs. Default: a new temp dir
	// (removed by Stop unless KeepDir).
	Dir     string
	KeepDir bool
	// StartTimeout bounds the wait for etcd and for /readyz. Default 90s.
	StartTimeout time.Duration
	// ExtraAPIServerFlags are appended to the kube-apiserver command line
	// (later flags win), e.g. "--disable-admission-plugins=ServiceAccount".
	ExtraAPIServerFlags []string
	// Logf receives progress messages. Default: discard.
	Logf func(format string, args ...any)
}

// Server is a running etcd + kube-apiserver pair.
type Server struct {
	// URL of the apiserver, e.g. https://127.0.0.1:34567.
	URL string
	// AdminToken authenticates as user "admin" in group system:masters.
	AdminToken string
	// Kubeconfig is the path of an admin kubeconfig (token + apiserver CA).
	Kubeconfig string
	// CAData is the PEM bundle that verifies the apiserver's self-signed cert.
	CAData []byte
	// RESTConfig and Client are admin clients.
	RESTConfig *rest.Config
	Client     kubernetes.Interface
	// EtcdURL is the etcd client URL (plain http on loopback).
	EtcdURL string
	// Dir holds everything; APIServerLog and EtcdLog are the process logs.
	Dir          string
	APIServerLog string
	EtcdLog      string
	// ControllerManagerLog is set by StartControllerManager.
	ControllerManagerLog string
	// StartupTime is the time from launching etcd to /readyz returning ok.
	StartupTime time.Duration

	keepDir  bool
	logf     func(string, ...any)
	procs    []*proc // start order; stopped in reverse
	stopOnce sync.Once
	stopErr  error
}

// Start starts a server for t, registers Stop (and a log dump if t failed)
// with t.Cleanup, and fails t if it cannot start.
func Start(t testing.TB) *Server { return StartWith(t, Options{}) }

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := resolveBinDir(opts.BinDir)
	if err == nil {
		err = checkBinaries(bin)
	}
	if err != nil {
		if os.Getenv(EnvSkip) == "1" {
			t.Skipf("kubeapi: %v (skipping because %s=1)", err, EnvSkip)
		}
		t.Fatalf("kubeapi: %v\nbuild them with test/tools/build.sh (cold build ~12 min), or set %s=1 to skip", err, EnvSkip)
	}
	opts.BinDir = bin
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
		opts.KeepDir = true // t.TempDir removes it after our cleanup
	}
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	s, err := New(context.Background(), opts)
	if err != nil {
		if s != nil {
			s.DumpLogs(t.Logf, 80)
		}
		t.Fatalf("kubeapi: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			s.DumpLogs(t.Logf, 80)
		}
		if err := s.Stop(); err != nil {
			t.Errorf("kubeapi: stop: %v", err)
		}
	})
	return s
}

// New starts etcd and kube-apiserver and waits for /readyz. On error the
// returned Server (if non-nil) is already stopped but its logs can still be
// dumped with DumpLogs.
func New(ctx context.Context, opts Options) (_ *Server, retErr error) {
	bin, err := resolveBinDir(opts.BinDir)
	if err != nil {
		return nil, err
	}
	if err := checkBinaries(bin); err != nil {
		return nil, err
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 90 * time.Second
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "kubeapi-"); err != nil {
			return nil, err
		}
	}
	s := &Server{
		Dir:          dir,
		APIServerLog: filepath.Join(dir, "kube-apiserver.log"),
		EtcdLog:      filepath.Join(dir, "etcd.log"),
		keepDir:      opts.KeepDir,
		logf:         logf,
	}
	defer func() {
		if retErr != nil {
			s.keepDir = true // keep logs for DumpLogs; caller's dir anyway
			_ = s.Stop()
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	start := time.Now()

	ports, err := freePorts(3)
	if err != nil {
		return s, err
	}
	clientPort, peerPort, securePort := ports[0], ports[1], ports[2]
	s.EtcdURL = "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)

	// etcd
	etcd, err := startProc(filepath.Join(bin, "etcd"), s.EtcdLog,
		"--name=kubeapi",
		"--data-dir="+filepath.Join(dir, "etcd-data"),
		"--listen-client-urls="+s.EtcdURL,
		"--advertise-client-urls="+s.EtcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubeapi="+peerURL,
		"--initial-cluster-state=new",
		"--unsafe-no-fsync", // test data only; much faster on slow disks
		"--log-level=warn",
	)
	if err != nil {
		return s, err
	}
	s.procs = append(s.procs, etcd)
	logf("kubeapi: etcd pid %d on %s", etcd.cmd.Process.Pid, s.EtcdURL)
	if err := waitHTTP(ctx, etcd, http.DefaultClient, s.EtcdURL+"/health", nil, logf, "etcd /health"); err != nil {
		return s, fmt.Errorf("etcd: %w", err)
	}

	// credentials
	s.AdminToken = randHex(16)
	tokenFile := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(s.AdminToken+`,admin,admin-uid,"system:masters"`+"\n"), 0o600); err != nil {
		return s, err
	}
	saKey := filepath.Join(dir, "sa.key")
	saPub := filepath.Join(dir, "sa.pub")
	if err := writeSAKeyPair(saKey, saPub); err != nil {
		return s, err
	}
	certDir := filepath.Join(dir, "certs")

	// kube-apiserver
	s.URL = "https://127.0.0.1:" + strconv.Itoa(securePort)
	args := []string{
		"--etcd-servers=" + s.EtcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// The lease reconciler rejects loopback advertise addresses; nothing
		// here needs the default/kubernetes Endpoints kept up to date.
		"--endpoint-reconciler-type=none",
		"--secure-port=" + strconv.Itoa(securePort),
		"--cert-dir=" + certDir, // self-signed serving cert for 127.0.0.1
		"--token-auth-file=" + tokenFile,
		"--authorization-mode=Node,RBAC",
		"--service-account-key-file=" + saPub,
		"--service-account-signing-key-file=" + saKey,
		"--service-account-issuer=" + ServiceAccountIssuer,
		"--service-cluster-ip-range=" + ServiceClusterIPRange,
		"--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
	}
	args = append(args, opts.ExtraAPIServerFlags...)
	apiserver, err := startProc(filepath.Join(bin, "kube-apiserver"), s.APIServerLog, args...)
	if err != nil {
		return s, err
	}
	s.procs = append(s.procs, apiserver)
	logf("kubeapi: kube-apiserver pid %d on %s (logs in %s)", apiserver.cmd.Process.Pid, s.URL, dir)

	insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // polling only
	}}
	hdr := http.Header{"Authorization": {"Bearer " + s.AdminToken}}
	if err := waitHTTP(ctx, apiserver, insecure, s.URL+"/readyz", hdr, logf, "kube-apiserver /readyz"); err != nil {
		return s, fmt.Errorf("kube-apiserver: %w", err)
	}
	s.StartupTime = time.Since(start)
	logf("kubeapi: ready after %s", s.StartupTime.Round(time.Millisecond))

	// The self-signed cert file holds the serving cert followed by its CA.
	if s.CAData, err = os.ReadFile(filepath.Join(certDir, "apiserver.crt")); err != nil {
		return s, err
	}
	s.RESTConfig = s.configForToken(s.AdminToken)
	if s.Client, err = kubernetes.NewForConfig(s.RESTConfig); err != nil {
		return s, err
	}
	s.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := s.WriteKubeconfig(s.Kubeconfig, "admin", s.AdminToken); err != nil {
		return s, err
	}
	return s, nil
}

func (s *Server) configForToken(token string) *rest.Config {
	return &rest.Config{
		Host:            s.URL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: s.CAData},
		QPS:             100,
		Burst:           200,
	}
}

// ConfigForToken returns a rest.Config that authenticates with token.
func (s *Server) ConfigForToken(token string) *rest.Config { return s.configForToken(token) }

// WriteKubeconfig writes a kubeconfig for the given user name and bearer token.
func (s *Server) WriteKubeconfig(path, user, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubeapi"] = &clientcmdapi.Cluster{Server: s.URL, CertificateAuthorityData: s.CAData}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["kubeapi"] = &clientcmdapi.Context{Cluster: "kubeapi", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = "kubeapi"
	return clientcmd.WriteToFile(*cfg, path)
}

// ServiceAccountToken mints a token (TokenRequest API, valid 1h) for the
// ServiceAccount namespace/name, creating the ServiceAccount if it does not
// exist (the namespace must exist). There is no controller-manager, so
// nothing else creates ServiceAccounts.
func (s *Server) ServiceAccountToken(ctx context.Context, namespace, name string) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if _, err := s.Client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("create serviceaccount %s/%s: %w", namespace, name, err)
	}
	exp := int64(3600)
	tr, err := s.Client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}},
		metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for serviceaccount %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}

// ServiceAccountKubeconfig mints a token for namespace/name (see
// ServiceAccountToken) and writes a kubeconfig using it into Dir, so a
// process can run as that ServiceAccount. It returns the kubeconfig path.
func (s *Server) ServiceAccountKubeconfig(ctx context.Context, namespace, name string) (string, error) {
	token, err := s.ServiceAccountToken(ctx, namespace, name)
	if err != nil {
		return "", err
	}
	path := filepath.Join(s.Dir, fmt.Sprintf("kubeconfig-sa-%s-%s", namespace, name))
	return path, s.WriteKubeconfig(path, "system:serviceaccount:"+namespace+":"+name, token)
}

// Stop terminates kube-apiserver then etcd (SIGTERM, SIGKILL after 10s) and
// removes Dir unless it was provided/kept. Safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		var errs []error
		for i := len(s.procs) - 1; i >= 0; i-- {
			if err := s.procs[i].stop(10 * time.Second); err != nil {
				errs = append(errs, err)
			}
		}
		if !s.keepDir && s.Dir != "" {
			errs = append(errs, os.RemoveAll(s.Dir))
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// DumpLogs writes the last n lines of the etcd, kube-apiserver and (if
// started) kube-controller-manager logs to logf.
func (s *Server) DumpLogs(logf func(string, ...any), n int) {
	for _, f := range []string{s.EtcdLog, s.APIServerLog, s.ControllerManagerLog} {
		if f == "" {
			continue
		}
		lines, err := tail(f, n)
		if err != nil {
			logf("kubeapi: %s: %v", f, err)
			continue
		}
		logf("kubeapi: last %d lines of %s:\n%s", n, f, strings.Join(lines, "\n"))
	}
}

// RepoRoot walks up from the working directory to the directory whose go.mod
// declares module github.com/tidegate/tidegate.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == mainModule {
					return dir, nil
				}
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod for module %s above the working directory", mainModule)
		}
		dir = parent
	}
}

func resolveBinDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	if d := os.Getenv(EnvBinDir); d != "" {
		return d, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin"), nil
}

func checkBinaries(dir string) error {
	var missing []string
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s in %s", strings.Join(missing, ", "), dir)
	}
	return nil
}

// proc is a child process whose output goes to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed when the process has exited
	err  error         // Wait result, valid after done
}

func startProc(path, logPath string, args ...string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "### %s %s\n", path, strings.Join(args, " "))
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	p := &proc{name: filepath.Base(path), cmd: cmd, log: f, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) stop(grace time.Duration) error {
	if p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return fmt.Errorf("%s (pid %d) ignored SIGTERM for %s; killed", p.name, p.cmd.Process.Pid, grace)
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// waitHTTP polls url until it answers 200, p exits, or ctx ends, logging the
// last response body every 5s.
func waitHTTP(ctx context.Context, p *proc, c *http.Client, url string, hdr http.Header, logf func(string, ...any), what string) error {
	start, lastLog := time.Now(), time.Now()
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, failedChecks(body))
		} else {
			last = err.Error()
		}
		if time.Since(lastLog) >= 5*time.Second {
			logf("kubeapi: waiting for %s (%s): %s", what, time.Since(start).Round(time.Second), last)
			lastLog = time.Now()
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before ready: %v (last: %s)", p.name, p.err, last)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %s", what, time.Since(start).Round(time.Second), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// failedChecks keeps only the failing lines of a /readyz?verbose-style body.
func failedChecks(body []byte) string {
	var out []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.Contains(l, "[-]") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	if len(out) == 0 {
		return strings.TrimSpace(string(body))
	}
	return strings.Join(out, "; ")
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func writeSAKeyPair(keyPath, pubPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(path string, n int) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines, nil
}
