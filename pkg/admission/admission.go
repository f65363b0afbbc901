// Package admission is tidegate's ValidatingAdmissionWebhook for Ingress.
// It runs only the pure model on the Ingress under review and the cached
// objects (host/path conflicts included): never nginx, never a file named by
// the request, and the request body is capped. This is the opposite of the
// design behind CVE-2025-1974, where the webhook ran `nginx -t` on user text.
package admission

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	jsoniter "github.com/json-iterator/go"
	admissionv1 "k8s.io/api/admission/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// MaxBody caps an AdmissionReview request (the API server itself limits
// objects to about 1.5 MiB).
const MaxBody = 3 << 20

// Path is where the webhook answers.
const Path = "/validate-ingress"

var json = jsoniter.ConfigCompatibleWithStandardLibrary

// Webhook validates Ingresses against the latest snapshot.
type Webhook struct {
	opts model.Options
	log  *slog.Logger
	snap atomic.Pointer[snapshot.Snapshot]
}

// New returns a webhook for a controller with opts.
func New(opts model.Options, log *slog.Logger) *Webhook {
	w := &Webhook{opts: opts, log: log}
	w.snap.Store((&snapshot.Snapshot{}).Index())
	return w
}

// Update gives the webhook the latest snapshot (for conflicts and references).
func (w *Webhook) Update(s *snapshot.Snapshot) { w.snap.Store(s) }

// ServeHTTP answers one AdmissionReview.
func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(rw, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil || len(body) > MaxBody {
		http.Error(rw, fmt.Sprintf("request body unreadable or larger than %d bytes", MaxBody), http.StatusRequestEntityTooLarge)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(rw, "not an admission.k8s.io/v1 AdmissionReview", http.StatusBadRequest)
		return
	}
	resp := w.Review(review.Request)
	out := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Response: resp}
	b, err := json.Marshal(out)
	if err != nil {
		http.Error(rw, "encode response", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	_, _ = rw.Write(b)
}

// Review decides one request: an Ingress of our class with problems that
// will not resolve by themselves is refused with every reason; problems that
// may (a Service or Secret not created yet) become warnings.
func (w *Webhook) Review(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if req.Kind.Kind != "Ingress" || req.Operation == admissionv1.Delete {
		return resp
	}
	var ing networkingv1.Ingress
	if err := json.Unmarshal(req.Object.Raw, &ing); err != nil {
		resp.Allowed = false
		resp.Result = &metav1.Status{Code: http.StatusBadRequest, Message: "tidegate: the object is not a networking.k8s.io/v1 Ingress"}
		return resp
	}
	if ing.Namespace == "" {
		ing.Namespace = req.Namespace
	}
	problems, ours := model.ValidateIngress(w.snap.Load(), &ing, w.opts)
	if !ours {
		return resp
	}
	var reasons []string
	for _, p := range problems {
		msg := p.Reason
		if p.Field != "" {
			msg = p.Field + ": " + msg
		}
		if p.Warning {
			resp.Warnings = append(resp.Warnings, "tidegate: "+msg)
			continue
		}
		reasons = append(reasons, msg)
	}
	if len(reasons) > 0 {
		resp.Allowed = false
		resp.Result = &metav1.Status{Code: http.StatusUnprocessableEntity, Reason: metav1.StatusReasonInvalid,
			Message: fmt.Sprintf("tidegate refuses Ingress %s/%s: %s", ing.Namespace, ing.Name, strings.Join(reasons, "; "))}
	}
	w.log.Info("admission review", "ingress", ing.Namespace+"/"+ing.Name, "operation", req.Operation, "allowed", resp.Allowed, "problems", len(reasons), "warnings", len(resp.Warnings))
	return resp
}

// Serve runs the webhook over TLS on addr with the key pair in certFile and
// keyFile (re-read when they change, as cert-manager rotates them) until ctx
// is done.
func (w *Webhook) Serve(ctx context.Context, addr, certFile, keyFile string) error {
	kp := &keyPair{cert: certFile, key: keyFile}
	if _, err := kp.get(nil); err != nil {
		return fmt.Errorf("admission webhook certificate: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, w)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		MaxHeaderBytes: 64 << 10, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.get}}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admission webhook: %w", err)
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	w.log.Info("admission webhook listening", "addr", addr, "path", Path)
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// keyPair loads a certificate from files, reloading it when a file changes.
type keyPair struct {
	cert, key string
	cached    atomic.Pointer[loaded]
}

type loaded struct {
	pair    *tls.Certificate
	checked time.Time
}

func (k *keyPair) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := k.cached.Load(); c != nil && time.Since(c.checked) < 10*time.Second {
		return c.pair, nil
	}
	pair, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		if c := k.cached.Load(); c != nil {
			return c.pair, nil // keep serving the last good pair
		}
		return nil, err
	}
	k.cached.Store(&loaded{pair: &pair, checked: time.Now()})
	return &pair, nil
}
