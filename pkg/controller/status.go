package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ServeStatus serves /healthz, /metrics and the status page (/) on addr
// until ctx is done.
// /healthz answers 200 only while nginx runs an applied configuration and
// the controller is not shutting down; its second line is the outcome of
// the last reload (a failed one does not make it 503: nginx still serves
// the last good configuration, and the failure is retried).
func (c *Controller) ServeStatus(ctx context.Context, addr string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		detail := "last reload: " + c.page.lastReload().String()
		if why, retry := c.page.nginxDown(); why != "" {
			detail = "nginx is not running: " + why + "; next try at " + retry.UTC().Format(time.RFC3339) + "\n" + detail
		}
		if !c.Healthy() {
			http.Error(w, "not ready: nginx is not serving the current configuration (or tidegate is shutting down)\n"+detail, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "ok generation=%s\n%s\n", c.Status().Generation, detail)
	})
	mux.Handle("/metrics", promhttp.HandlerFor(c.met.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", c.servePage)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("status port: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
