package kubeapi

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultControllers are the kube-controller-manager controllers that make
// Deployments work without a scheduler or kubelet: Deployment → ReplicaSet →
// Pods, the EndpointSlices of Services, and the "default" ServiceAccount
// every namespace needs before a Pod can be admitted.
var DefaultControllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"endpointslice-controller",
	"serviceaccount-controller",
}

// ControllerManagerOptions tune StartControllerManager. The zero value runs
// DefaultControllers.
type ControllerManagerOptions struct {
	// Controllers is the --controllers list. Default: DefaultControllers.
	Controllers []string
	// ExtraFlags are appended to the command line (later flags win).
	ExtraFlags []string
	// StartTimeout bounds the wait for /healthz. Default 60s.
	StartTimeout time.Duration
}

// StartControllerManager runs bin/kube-controller-manager against s (admin
// kubeconfig, no leader election, one shared client identity, HTTPS on a
// free loopback port) and waits for its /healthz. Stop stops it first. Its
// log is ControllerManagerLog.
func (s *Server) StartControllerManager(ctx context.Context, opts ControllerManagerOptions) error {
	bin, err := resolveBinDir("")
	if err != nil {
		return err
	}
	path := filepath.Join(bin, "kube-controller-manager")
	if fi, err := os.Stat(path); err != nil || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("missing kube-controller-manager in %s: build it with test/tools/build.sh", bin)
	}
	if len(opts.Controllers) == 0 {
		opts.Controllers = DefaultControllers
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 60 * time.Second
	}
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	s.ControllerManagerLog = filepath.Join(s.Dir, "kube-controller-manager.log")
	args := []string{
		"--kubeconfig=" + s.Kubeconfig,
		"--controllers=" + strings.Join(opts.Controllers, ","),
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(ports[0]),
		"--cert-dir=" + filepath.Join(s.Dir, "kcm-certs"),
		// Endpoint changes published as they happen (the default, made explicit).
		"--endpointslice-updates-batch-period=0s",
		"--v=1",
	}
	args = append(args, opts.ExtraFlags...)
	p, err := startProc(path, s.ControllerManagerLog, args...)
	if err != nil {
		return err
	}
	s.procs = append(s.procs, p)
	s.logf("kubeapi: kube-controller-manager pid %d (%s)", p.cmd.Process.Pid, strings.Join(opts.Controllers, ","))
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // polling only
	}}
	url := "https://127.0.0.1:" + strconv.Itoa(ports[0]) + "/healthz"
	if err := waitHTTP(ctx, p, insecure, url, nil, s.logf, "kube-controller-manager /healthz"); err != nil {
		return fmt.Errorf("kube-controller-manager: %w", err)
	}
	return nil
}

// WaitServiceAccount waits until the ServiceAccount namespace/name exists
// (the serviceaccount-controller creates "default" in every namespace; Pods
// are refused until it does).
func (s *Server) WaitServiceAccount(ctx context.Context, namespace, name string) error {
	for {
		_, err := s.Client.CoreV1().ServiceAccounts(namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("serviceaccount %s/%s: %w", namespace, name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
