// Package echo is the demo and test backend behind `tidegate echo`: a small
// fasthttp server that answers every request with 200 and a JSON description
// of the request as it arrived, so tests can see exactly what nginx sent
// upstream (host, raw path, headers).
package echo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"time"

	jsoniter "github.com/json-iterator/go"
	"github.com/valyala/fasthttp"
)

// ShutdownTimeout bounds how long Serve waits for in-flight requests once its
// context is done.
const ShutdownTimeout = 5 * time.Second

// Reply is the JSON body of every answer.
type Reply struct {
	// Name is the name the server was started with, telling backends apart.
	Name string `json:"name"`
	// Host is the Host header (or the host of an absolute-form request URI).
	Host string `json:"host"`
	// Path is the request path exactly as received: not decoded, not
	// normalised ("/a/%2Fb/../c" stays so), without the query string.
	Path string `json:"path"`
	// Query is the raw query string without the "?", empty if none.
	Query string `json:"query"`
	// Method is the request method.
	Method string `json:"method"`
	// Headers maps each canonical header name to its value, as received
	// (nothing the server would synthesise, such as a Content-Length: 0);
	// repeated headers are joined with ", " in the order they came.
	Headers map[string]string `json:"headers"`
}

// json encodes with sorted map keys, so a given request always gives the
// same bytes.
var json = jsoniter.ConfigCompatibleWithStandardLibrary

// Handler returns the request handler that answers every request with 200
// and a Reply as JSON. The request body is read (fasthttp reads it before
// calling the handler) and ignored.
func Handler(name string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		body, err := json.Marshal(Describe(name, ctx))
		if err != nil {
			// A Reply of strings cannot fail to encode; answer
			// something useful all the same.
			ctx.Error(fmt.Sprintf("encode reply: %v", err), fasthttp.StatusInternalServerError)
			return
		}
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}
}

// Describe builds the Reply for one request.
func Describe(name string, ctx *fasthttp.RequestCtx) Reply {
	uri := ctx.URI()
	r := Reply{
		Name:    name,
		Host:    string(ctx.Host()),
		Path:    string(uri.PathOriginal()),
		Query:   string(uri.QueryString()),
		Method:  string(ctx.Method()),
		Headers: map[string]string{},
	}
	for k, v := range ctx.Request.Header.AllInOrder() {
		key := textproto.CanonicalMIMEHeaderKey(string(k))
		if prev, ok := r.Headers[key]; ok {
			r.Headers[key] = prev + ", " + string(v)
			continue
		}
		r.Headers[key] = string(v)
	}
	return r
}

// NewServer returns the fasthttp server Serve runs, for callers that manage
// its lifetime themselves.
func NewServer(name string) *fasthttp.Server {
	return &fasthttp.Server{
		Handler: Handler(name),
		Name:    "tidegate-echo",
		// Timeouts let Shutdown finish: fasthttp waits for keepalive
		// connections to go idle.
		ReadTimeout:  30 * time.Second,
		WriteTimeout: 30 * time.Second,
		IdleTimeout:  30 * time.Second,
	}
}

// Serve listens on addr ("127.0.0.1:8080", ":0") and answers as Handler
// does until ctx is done, then shuts down gracefully. It returns nil after a
// clean shutdown.
func Serve(ctx context.Context, addr, name string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("echo %s: listen %s: %w", name, addr, err)
	}
	return ServeListener(ctx, ln, name)
}

// ServeListener is Serve on a listener the caller opened (tests use
// 127.0.0.1:0). It closes ln before returning.
func ServeListener(ctx context.Context, ln net.Listener, name string) error {
	srv := NewServer(name)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		if err != nil {
			return fmt.Errorf("echo %s: serve %s: %w", name, ln.Addr(), err)
		}
		return nil
	case <-ctx.Done():
	}

	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := srv.ShutdownWithContext(sctx)
	// Shutdown is a no-op if it ran before Serve registered the listener;
	// closing it ourselves makes Serve return in every case.
	if cerr := ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
		err = cerr
	}
	<-served
	if err != nil {
		return fmt.Errorf("echo %s: shutdown: %w", name, err)
	}
	return nil
}
