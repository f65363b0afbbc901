package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/tidegate/tidegate/pkg/admission"
	"github.com/tidegate/tidegate/pkg/controller"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/snapshot"
	"github.com/tidegate/tidegate/pkg/source/kube"
	"github.com/tidegate/tidegate/pkg/status"
	"github.com/tidegate/tidegate/pkg/tlsutil"
)

// kubeFlags are the flags only `tidegate controller` has.
type kubeFlags struct {
	kubeconfig       string
	watchNamespace   string
	publishService   string
	publishAddresses string
	electionID       string
	electionTTL      time.Duration
	updateStatus     bool
	webhookPort      int
	webhookCert      string
	webhookKey       string
	webhookHosts     string
}

func newController() *cobra.Command {
	f := commonFlags{controller: true}
	var k kubeFlags
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run in a cluster (or with --kubeconfig): watch Ingresses, serve them, write their status",
		Long: `controller watches Ingress, IngressClass, Service, EndpointSlice, Secret and
the --configmap ConfigMap through the Kubernetes API, and serves the Ingresses
of its class through its own nginx. Every replica serves traffic; the one that
holds the --election-id Lease writes Ingress status and records Events.

In a pod it uses the pod's ServiceAccount; elsewhere --kubeconfig (or
$KUBECONFIG, or ~/.kube/config). POD_NAME and POD_NAMESPACE (downward API)
name the replica and the namespace of its Lease.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runKube(&f, &k)
		},
	}
	f.register(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVar(&k.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster config, else $KUBECONFIG or ~/.kube/config)")
	fs.StringVar(&k.watchNamespace, "watch-namespace", "", "namespace to watch for Ingresses, Services, EndpointSlices and Secrets (default: all)")
	fs.StringVar(&k.publishService, "publish-service", "", "NAMESPACE/NAME of the Service whose address is written into Ingress status")
	fs.StringVar(&k.publishAddresses, "publish-status-address", "", "comma-separated IPs or host names written into Ingress status (wins over --publish-service)")
	fs.StringVar(&k.electionID, "election-id", "tidegate-leader", "name of the Lease replicas compete for; the holder writes status")
	fs.DurationVar(&k.electionTTL, "election-ttl", 30*time.Second, "how long the leader may be gone before another replica takes over")
	fs.BoolVar(&k.updateStatus, "update-status", true, "write Ingress status and Events (leader only)")
	fs.IntVar(&k.webhookPort, "admission-webhook-port", 0, "serve the Ingress ValidatingAdmissionWebhook (HTTPS, path "+admission.Path+") on this port; 0 turns it off")
	fs.StringVar(&k.webhookCert, "admission-webhook-cert", "", "PEM certificate of the webhook (e.g. from a cert-manager Secret); generated self-signed into --workdir when empty")
	fs.StringVar(&k.webhookKey, "admission-webhook-key", "", "PEM key of the webhook certificate")
	fs.StringVar(&k.webhookHosts, "admission-webhook-hosts", "localhost,127.0.0.1", "comma-separated DNS names/IPs of a generated webhook certificate (the webhook Service's DNS name in a cluster)")
	return cmd
}

// runKube wires the kube source and the status writer into runController.
func runKube(f *commonFlags, k *kubeFlags) error {
	log := slog.Default()
	// client-go logs through klog: keep one structured stream.
	klog.SetSlogLogger(log.With("logger", "client-go"))
	restCfg, err := restConfig(k.kubeconfig)
	if err != nil {
		return err
	}
	restCfg.UserAgent = "tidegate/" + Version
	restCfg.QPS, restCfg.Burst = 50, 100
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	f.opts.Targets = f.targets(false, k.webhookPort)
	meta, err := metadata.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("kubernetes metadata client: %w", err)
	}
	// Referenced Secrets are read one GET each, every one of them at
	// start, served from the API server's watch cache: at 50 per second
	// 2,000 TLS Ingresses took 40 s to come up.
	readCfg := rest.CopyConfig(restCfg)
	readCfg.QPS, readCfg.Burst = 500, 1000
	reader, err := kubernetes.NewForConfig(readCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	src, err := kube.New(kube.Options{Client: client, Metadata: meta, Reader: reader, Namespace: k.watchNamespace, Model: f.opts, Logger: log})
	if err != nil {
		return err
	}
	var writer *status.Writer
	if k.updateStatus {
		if writer, err = newStatusWriter(client, f.opts, k, log); err != nil {
			return err
		}
	}
	log.Info("kubernetes API", "host", restCfg.Host, "watch-namespace", k.watchNamespace, "ingress-class", f.opts.IngressClass)
	return runController(f, func(ctx context.Context, c *controller.Controller) error {
		reg := c.Registry()
		if err := reg.Register(src.Metrics()); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
		onChange := c.Update
		errc := make(chan error, 2)
		if writer != nil {
			if err := reg.Register(writer.Metrics()); err != nil {
				return fmt.Errorf("register metrics: %w", err)
			}
			onChange = func(snap *snapshot.Snapshot, problems []model.Problem) {
				c.Update(snap, problems)
				writer.Update(snap)
			}
			go func() { errc <- writer.Run(ctx) }()
		}
		n := 1
		if writer != nil {
			n = 2
		}
		if k.webhookPort > 0 {
			wh := admission.New(f.opts, log)
			certFile, keyFile, err := webhookKeyPair(k, c.WorkDir())
			if err != nil {
				return err
			}
			inner := onChange
			onChange = func(snap *snapshot.Snapshot, problems []model.Problem) {
				wh.Update(snap)
				inner(snap, problems)
			}
			go func() { errc <- wh.Serve(ctx, ":"+strconv.Itoa(k.webhookPort), certFile, keyFile) }()
			n++
		}
		go func() { errc <- src.Run(ctx, onChange) }()
		for range n {
			if err := <-errc; err != nil {
				return err // runController stops the rest
			}
		}
		return nil
	})
}

func newStatusWriter(client kubernetes.Interface, opts model.Options, k *kubeFlags, log *slog.Logger) (*status.Writer, error) {
	podName, podNS := os.Getenv("POD_NAME"), os.Getenv("POD_NAMESPACE")
	leaseNS := podNS
	if leaseNS == "" {
		// Out of a pod: beside the ConfigMap, in the controller's namespace.
		leaseNS, _, _ = strings.Cut(opts.ConfigMap, "/")
	}
	if leaseNS == "" {
		leaseNS = "default"
	}
	var addrs []string
	for _, a := range strings.Split(k.publishAddresses, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return status.New(status.Config{
		Client: client, Model: opts,
		PublishAddresses: addrs, PublishService: k.publishService,
		PodName: podName, PodNamespace: podNS,
		Election: status.Election{Namespace: leaseNS, Name: k.electionID, TTL: k.electionTTL},
		Logger:   log,
	})
}

// restConfig is --kubeconfig when given, else the in-cluster config, else
// the usual kubeconfig loading rules.
func restConfig(path string) (*rest.Config, error) {
	if path != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", path, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err == nil {
		return cfg, nil
	}
	if !errors.Is(err, rest.ErrNotInCluster) {
		return nil, fmt.Errorf("in-cluster config: %w", err)
	}
	cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("not in a cluster and no usable kubeconfig (use --kubeconfig): %w", err)
	}
	return cfg, nil
}

// webhookKeyPair returns the webhook's certificate files: the ones given,
// or a self-signed pair generated into the working directory (its PEM is the
// caBundle of the ValidatingWebhookConfiguration).
func webhookKeyPair(k *kubeFlags, workdir string) (string, string, error) {
	if k.webhookCert != "" || k.webhookKey != "" {
		if k.webhookCert == "" || k.webhookKey == "" {
			return "", "", errors.New("--admission-webhook-cert and --admission-webhook-key go together")
		}
		return k.webhookCert, k.webhookKey, nil
	}
	var hosts []string
	for _, h := range strings.Split(k.webhookHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	crt, key, err := tlsutil.SelfSigned("tidegate admission webhook", hosts...)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile := filepath.Join(workdir, "admission.crt"), filepath.Join(workdir, "admission.key")
	if err := os.WriteFile(certFile, crt, 0o644); err != nil {
		return "", "", fmt.Errorf("write webhook certificate: %w", err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		return "", "", fmt.Errorf("write webhook key: %w", err)
	}
	slog.Info("admission webhook uses a generated self-signed certificate; put it in the webhook's caBundle", "cert", certFile)
	return certFile, keyFile, nil
}
