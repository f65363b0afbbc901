package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tidegate/tidegate/pkg/controller"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/nginx"
	"github.com/tidegate/tidegate/pkg/source/files"
)

// commonFlags are shared by local and controller.
type commonFlags struct {
	opts          model.Options
	httpPort      int
	httpsPort     int
	statusPort    int
	statusAddress string
	workdir       string
	accessLog     string
	errorLog      string
	metrics       bool
	shutdownGrace time.Duration
	stopTimeout   time.Duration
	nginxUser     string
	// controller is set for `tidegate controller`: in a pod, the status
	// port listens where the kubelet probes (statusListen).
	controller bool
}

func (f *commonFlags) register(fs *pflag.FlagSet) {
	d := model.DefaultOptions()
	fs.StringVar(&f.opts.IngressClass, "ingress-class", d.IngressClass, "IngressClass name this controller serves")
	fs.StringVar(&f.opts.ControllerClass, "controller-class", d.ControllerClass, "spec.controller of the IngressClasses this controller serves")
	fs.BoolVar(&f.opts.WatchWithoutClass, "watch-ingress-without-class", false, "also serve Ingresses that name no class")
	fs.StringVar(&f.opts.ConfigMap, "configmap", d.ConfigMap, "NAMESPACE/NAME of the ConfigMap with global settings")
	fs.StringVar(&f.opts.DefaultBackendService, "default-backend-service", "", "NAMESPACE/NAME of the Service answering unmatched requests (default: a built-in 404)")
	fs.StringVar(&f.opts.DefaultSSLCertificate, "default-ssl-certificate", "", "NAMESPACE/NAME of a TLS Secret served for unknown names, clients without SNI and TLS hosts without a usable Secret (default: a self-signed certificate)")
	fs.StringVar(&nginx.Binary, "nginx-binary", nginx.Binary, "the nginx executable (Debian's nginx-light with libnginx-mod-http-lua)")
	fs.IntVar(&f.httpPort, "http-port", 8080, "port for plain HTTP")
	fs.IntVar(&f.httpsPort, "https-port", 8443, "port for HTTPS")
	fs.IntVar(&f.statusPort, "status-port", 10254, "port for /healthz, /metrics and the status page")
	fs.StringVar(&f.statusAddress, "status-address", "", statusAddressHelp)
	fs.StringVar(&f.workdir, "workdir", "", "directory for nginx.conf, logs and the control socket (default: a new temporary directory). With a directory given, nginx outlives tidegate (a crash, SIGKILL) and a tidegate started again on the same directory adopts it: no request is lost")
	fs.StringVar(&f.accessLog, "access-log", "", "access log file (default: WORKDIR/logs/access.log; /dev/stdout in a container)")
	fs.StringVar(&f.errorLog, "error-log", "", "nginx's error log file (default: WORKDIR/logs/error.log; /dev/stderr in a container: tidegate passes it on to its own stderr)")
	fs.BoolVar(&f.metrics, "enable-metrics", true, "count every request for /metrics (nginx_ingress_controller_requests and the other request series); false saves nginx one log line per request, as in ingress-nginx")
	fs.DurationVar(&f.shutdownGrace, "shutdown-grace-period", 0, "on SIGTERM, how long /healthz answers 503 before nginx stops taking requests")
	fs.DurationVar(&f.stopTimeout, "stop-timeout", 30*time.Second, "how long nginx may take to finish in-flight requests when stopping")
	fs.StringVar(&f.nginxUser, "nginx-user", "nobody", "when tidegate runs as root, the user nginx's workers run as (never root; its primary group may read the files workers open)")
}

// settings builds the nginx settings, creating the working directory.
func (f *commonFlags) settings() (nginx.Settings, error) {
	for name, p := range map[string]int{"--http-port": f.httpPort, "--https-port": f.httpsPort, "--status-port": f.statusPort} {
		if p < 1 || p > 65535 {
			return nginx.Settings{}, fmt.Errorf("%s %d: want 1-65535", name, p)
		}
	}
	// What tidegate and nginx create is theirs alone unless made otherwise
	// (nginx would make its logs and pid file 0644).
	syscall.Umask(0o077)
	dir := f.workdir
	if dir == "" {
		d, err := os.MkdirTemp("", "tidegate-")
		if err != nil {
			return nginx.Settings{}, fmt.Errorf("create working directory: %w", err)
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nginx.Settings{}, fmt.Errorf("create working directory: %w", err)
	}
	// nginx reads relative paths from its prefix, not from our directory.
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nginx.Settings{}, fmt.Errorf("working directory: %w", err)
	}
	set := nginx.Settings{WorkDir: dir, HTTPPort: f.httpPort, HTTPSPort: f.httpsPort, AccessLog: f.accessLog, ErrorLog: f.errorLog,
		NoRequestMetrics: !f.metrics,
		CPUs:             nginx.AvailableCPUs(),   // worker-processes "auto"
		Resolvers:        nginx.SystemResolvers()} // auth-url host names
	// nginx inherits the raised limit, and each worker gets its own
	// (worker_rlimit_nofile, max-worker-open-files).
	soft, hard, err := nginx.RaiseOpenFiles()
	if err != nil {
		slog.Warn("nginx may run out of file descriptors", "err", err)
	}
	slog.Info("open files limit", "soft", soft, "hard", hard)
	set.OpenFiles = hard
	if os.Geteuid() == 0 {
		// Workers that serve the internet never run as root; the working
		// directory gives them what they open (nginx/workdir.go).
		// Containers run tidegate as non-root: workers run as its user.
		w, err := nginx.LookupWorkerUser(f.nginxUser)
		if err != nil {
			return nginx.Settings{}, fmt.Errorf("--nginx-user: %w", err)
		}
		set.Workers = w
	}
	return set, nil
}

// targets is where Ingress URLs may point nginx (model.TargetPolicy):
// never at tidegate's own ports (these and extra) on this machine's
// addresses, and at its loopback only when loopback is true (tidegate
// local: the manifests are the operator's).
func (f *commonFlags) targets(loopback bool, extra ...int) model.TargetPolicy {
	p := model.TargetPolicy{AllowLoopback: loopback, OwnPorts: append([]int{f.httpPort, f.httpsPort, f.statusPort}, extra...)}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if pfx, err := netip.ParsePrefix(a.String()); err == nil {
				p.OwnAddrs = append(p.OwnAddrs, pfx.Addr().Unmap())
			}
		}
	}
	return p
}

// runController runs a controller fed by start until SIGINT/SIGTERM.
func runController(f *commonFlags, start func(ctx context.Context, c *controller.Controller) error) error {
	statusAddrs, warning, err := f.statusListen(os.Getenv)
	if err != nil {
		return err
	}
	// SIGHUP asks for a resync, as for most daemons; left to Go's default
	// it would end tidegate (and, before nginx outlived it, nginx too).
	// Caught before anything starts, so that no moment is fatal.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	sigCtx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()

	set, err := f.settings()
	if err != nil {
		return err
	}
	log := slog.Default()
	if warning != "" {
		log.Warn(warning)
	}
	// Only a working directory given by name can be found again by the
	// next tidegate; an nginx left in a new temporary one would only hold
	// the ports.
	c, err := controller.New(controller.Config{Nginx: set, Options: f.opts, Logger: log, Detach: f.workdir != ""})
	if err != nil {
		return err
	}
	log.Info("tidegate starting", "version", Version, "workdir", set.WorkDir, "http", f.httpPort, "https", f.httpsPort, "status", strings.Join(statusAddrs, ","), "cpus", set.CPUs)
	go func() {
		for range hup {
			log.Info("SIGHUP: resyncing")
			c.Resync()
		}
	}()
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()

	errc := make(chan error, 2+len(statusAddrs))
	for _, addr := range statusAddrs {
		go func() { errc <- c.ServeStatus(runCtx, addr) }()
	}
	// The source's own shutdown (a kube source releases its election
	// Lease) must finish before the process exits.
	sourceDone := make(chan struct{})
	go func() { errc <- start(runCtx, c); close(sourceDone) }()
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx, f.stopTimeout) }()

	select {
	case <-sigCtx.Done():
		log.Info("shutting down: /healthz now answers 503", "grace", f.shutdownGrace)
		c.Drain()
		time.Sleep(f.shutdownGrace)
	case err := <-errc:
		if err != nil {
			stopRun()
			<-done
			return err
		}
	case err := <-done:
		return err
	}
	stopRun()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	select {
	case <-sourceDone:
	case <-time.After(5 * time.Second):
		log.Warn("the source did not stop within 5s")
	}
	log.Info("tidegate stopped")
	return nil
}

func newLocal() *cobra.Command {
	var f commonFlags
	var manifests string
	cmd := &cobra.Command{
		Use:   "local --manifests DIR",
		Short: "Serve a directory of Kubernetes YAML (Ingress, Service, EndpointSlice, Secret, ConfigMap) with no cluster",
		Long: `local runs the same controller as in a cluster, fed from a directory of YAML
manifests. It starts its own nginx. Editing, creating, removing or renaming a
file in the directory takes effect live.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if manifests == "" {
				return errors.New("--manifests DIR is required")
			}
			if st, err := os.Stat(manifests); err != nil || !st.IsDir() {
				return fmt.Errorf("--manifests %s: not a directory", manifests)
			}
			f.opts.Targets = f.targets(true)
			return runController(&f, func(ctx context.Context, c *controller.Controller) error {
				return files.Watch(ctx, manifests, files.WatchOptions{Debounce: 10 * time.Millisecond}, c.Update)
			})
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().StringVar(&manifests, "manifests", "", "directory of YAML manifests to serve")
	return cmd
}
