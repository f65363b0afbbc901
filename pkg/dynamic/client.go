// Package dynamic pushes the Dynamic part of the model (backends and
// certificates) to the Lua side of nginx over its control unix socket. A push
// never reloads nginx: every worker picks the change up within milliseconds.
//
// The protocol (see lua/tidegate/configuration.lua):
//
//	POST /configuration/backends     {"version":N,"full":bool,"backends":[...],"removed":["name",...]}
//	POST /configuration/certificates {"version":N,"full":bool,"certificates":[...],"removed":["id",...]}
//
// Backends go in the line format (Content-Type application/x-ndjson): the
// document without "backends" on the first line, then one backend per line.
// nginx recognises a line it has stored before by its bytes and skips
// decoding and checking it, and it checks the others one at a time, serving
// requests in between: a full push of thousands of unchanged backends costs
// little. nginx also takes the single-document form (application/json).
//
// Every request carries the control token (TokenHeader); without it nginx
// answers 403 {"error":"reason"} and does nothing.
//
// "full" replaces the whole set; otherwise the listed items are upserted and
// the removed names dropped. nginx answers 200 {"version":N,"changed":K},
// 400/405/409/413 {"error":"reason"}. Versions are the clock in
// milliseconds and must increase: nginx refuses a version not above the
// one it holds (409), and one above 2^50 unless it is that one + 1 (400);
// both answers name the version it holds ("version"), from which the client
// pushes again. The first push after nginx starts must be full (the shared
// dicts are empty); a partial one is refused with 409 and "full_required"
// (PushError.FullRequired).
package dynamic

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	jsoniter "github.com/json-iterator/go"
	"github.com/valyala/fasthttp"

	"github.com/tidegate/tidegate/pkg/model"
)

// The paths of the push endpoints on the control socket.
const (
	BackendsPath     = "/configuration/backends"
	CertificatesPath = "/configuration/certificates"
)

// TokenHeader carries the control token in every request; without the
// token nginx answers 403 and does nothing (lua/tidegate/control.lua).
// pkg/nginx makes the token (nginx.ControlToken) and names the header too
// (nginx.TokenHeader).
const TokenHeader = "X-Tidegate-Token"

var json = jsoniter.ConfigCompatibleWithStandardLibrary

// Client pushes to one nginx. It is safe for concurrent use; pushes are
// serialised so that versions reach nginx in the order they were assigned.
type Client struct {
	socket string
	token  string
	http   *fasthttp.Client

	// requestTimeout bounds one HTTP exchange, plus a second per MiB of
	// body (nginx checks every certificate of a push: 40,000 of them,
	// 172 MB, took tens of seconds); the context bounds the whole push
	// including retries.
	requestTimeout time.Duration
	minBackoff     time.Duration
	maxBackoff     time.Duration

	mu      sync.Mutex
	version int64
}

// New returns a client for the control socket at socketPath, sending the
// control token with every request. The first version is the current time
// in milliseconds, so a restarted controller normally continues above what
// nginx has stored; if it does not (clock set back), the first push is
// retried once above nginx's version.
func New(socketPath, token string) *Client {
	c := &Client{
		socket:         socketPath,
		token:          token,
		requestTimeout: 30 * time.Second,
		minBackoff:     20 * time.Millisecond,
		maxBackoff:     time.Second,
	}
	c.http = &fasthttp.Client{
		Name: "tidegate",
		Dial: func(string) (net.Conn, error) {
			conn, err := net.Dial("unix", socketPath)
			if err != nil {
				return nil, &dialError{err: err}
			}
			return conn, nil
		},
		MaxConnsPerHost:               2,
		MaxIdleConnDuration:           10 * time.Second,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		// Retries are ours: a POST is retried only when it cannot have
		// reached nginx, or when repeating it is harmless (see push).
		RetryIfErr: func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
	}
	return c
}

// PushError is a push that nginx answered with an error status.
type PushError struct {
	// Path is the endpoint, BackendsPath or CertificatesPath.
	Path string
	// Status is the HTTP status nginx answered.
	Status int
	// Reason is the "error" field of the answer (or its raw body).
	Reason string
	// FullRequired is set when nginx holds nothing yet (it was started
	// anew) and refused a partial push: push everything with full=true.
	FullRequired bool
}

func (e *PushError) Error() string {
	return fmt.Sprintf("push %s: nginx answered %d: %s", e.Path, e.Status, e.Reason)
}

// Result is what nginx reports for a successful push.
type Result struct {
	// Version is the version nginx now holds.
	Version int64 `json:"version"`
	// Changed counts the items that were added, changed or removed.
	Changed int `json:"changed"`
	// Rejected are certificates nginx could not load, by ID, with the
	// reason; the rest of the push was applied.
	Rejected map[string]string `json:"rejected,omitempty"`
}

// RejectedError is what a push returns when nginx applied it but left out
// items it could not take (a certificate it cannot load, a backend that
// fails its checks); what nginx had stored for them stays.
type RejectedError struct {
	// Rejected maps certificate IDs or backend names to nginx's reasons.
	Rejected map[string]string
}

func (e *RejectedError) Error() string {
	ids := make([]string, 0, len(e.Rejected))
	for id := range e.Rejected {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return fmt.Sprintf("nginx left out %d item(s) it could not take: %s", len(ids), strings.Join(ids, ", "))
}

// backendsHeader is the first line of a backends push.
type backendsHeader struct {
	Version int64    `json:"version"`
	Full    bool     `json:"full"`
	Removed []string `json:"removed"`
}

// The content types of the push bodies.
const (
	contentJSON  = "application/json"
	contentLines = "application/x-ndjson"
)

// encodeLines renders backends one per line. json-iterator escapes control
// characters in strings, so a backend never spans two lines, and encodes
// the same backend to the same bytes every time.
func encodeLines(backends []model.Backend) ([]byte, error) {
	var buf []byte
	for i := range backends {
		b, err := json.Marshal(&backends[i])
		if err != nil {
			return nil, fmt.Errorf("backend %s: %w", backends[i].Name, err)
		}
		buf = append(buf, b...)
		buf = append(buf, '\n')
	}
	return buf, nil
}

type certificatesDoc struct {
	Version      int64               `json:"version"`
	Full         bool                `json:"full"`
	Certificates []model.Certificate `json:"certificates"`
	Removed      []string            `json:"removed"`
}

type answer struct {
	// Version is the version nginx holds: the push's after a 200; after a
	// refusal of the push's version (409, or 400 for a version above 2^50
	// that is not the stored one + 1), the stored one; else nil.
	Version  *int64            `json:"version"`
	Changed  int               `json:"changed"`
	Rejected map[string]string `json:"rejected"`
	Error    string            `json:"error"`
	// FullRequired: see PushError.
	FullRequired bool `json:"full_required"`
}

// PushBackends sends backends to nginx. With full, nginx drops every backend
// not listed; otherwise the listed backends are added or replaced and the
// removed names dropped.
//
// A *RejectedError means the push was applied without the backends it
// names.
func (c *Client) PushBackends(ctx context.Context, full bool, backends []model.Backend, removed []string) error {
	res, err := c.PushBackendsResult(ctx, full, backends, removed)
	if err == nil && len(res.Rejected) > 0 {
		return &RejectedError{Rejected: res.Rejected}
	}
	return err
}

// PushBackendsResult is PushBackends that also returns nginx's answer.
func (c *Client) PushBackendsResult(ctx context.Context, full bool, backends []model.Backend, removed []string) (Result, error) {
	hdr := &backendsHeader{Full: full, Removed: removed}
	if hdr.Removed == nil {
		hdr.Removed = []string{}
	}
	lines, err := encodeLines(backends)
	if err != nil {
		return Result{}, fmt.Errorf("push %s: encode: %w", BackendsPath, err)
	}
	return c.push(ctx, BackendsPath, contentLines, func(v int64) ([]byte, error) {
		hdr.Version = v
		return linesBody(hdr, lines)
	})
}

// linesBody is a backends push in the line format: the header, then the
// encoded backends.
func linesBody(hdr *backendsHeader, lines []byte) ([]byte, error) {
	first, err := json.Marshal(hdr)
	if err != nil {
		return nil, err
	}
	body := make([]byte, 0, len(first)+1+len(lines))
	return append(append(append(body, first...), '\n'), lines...), nil
}

// PushCertificates sends certificates to nginx. With full, nginx drops every
// certificate not listed; otherwise the listed ones are added or replaced and
// the removed ids dropped. nginx leaves out a pair whose PEMs do not parse
// or do not match, keeping what it stored for that id, and applies the
// rest: then the error is a *RejectedError naming them.
func (c *Client) PushCertificates(ctx context.Context, full bool, certs []model.Certificate, removed []string) error {
	res, err := c.PushCertificatesResult(ctx, full, certs, removed)
	if err == nil && len(res.Rejected) > 0 {
		return &RejectedError{Rejected: res.Rejected}
	}
	return err
}

// PushCertificatesResult is PushCertificates that also returns nginx's answer.
func (c *Client) PushCertificatesResult(ctx context.Context, full bool, certs []model.Certificate, removed []string) (Result, error) {
	doc := &certificatesDoc{Full: full, Certificates: certs, Removed: removed}
	if doc.Certificates == nil {
		doc.Certificates = []model.Certificate{}
	}
	if doc.Removed == nil {
		doc.Removed = []string{}
	}
	return c.push(ctx, CertificatesPath, contentJSON, func(v int64) ([]byte, error) {
		doc.Version = v
		return json.Marshal(doc)
	})
}

// WriteSeed writes the full pushes of backends and certs (none when nil) to dir, where
// nginx's init_by_lua finds them when it starts with empty shared dicts (a
// start, a restart, a reload that resized a dict) and stores them before
// any worker serves (lua/tidegate/configuration.lua, seed). Their versions
// are below those of the pushes that follow. The files hold private keys:
// they are written for the owner only; RemoveSeed deletes them once the
// push landed.
func (c *Client) WriteSeed(dir string, backends []model.Backend, certs []model.Certificate) error {
	lines, err := encodeLines(backends)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	c.mu.Lock()
	bv, cv := c.nextVersion(), c.nextVersion()
	c.mu.Unlock()
	body, err := linesBody(&backendsHeader{Version: bv, Full: true, Removed: []string{}}, lines)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	files := map[string][]byte{SeedBackends: body}
	if certs != nil {
		if files[SeedCertificates], err = json.Marshal(&certificatesDoc{Version: cv, Full: true, Certificates: certs, Removed: []string{}}); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	} else if err := ignoreMissing(os.Remove(filepath.Join(dir, SeedCertificates))); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	for name, b := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path+".new", b, 0o600); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return nil
}

// The seed files WriteSeed writes, as configuration.lua reads them.
const (
	SeedBackends     = "backends.lines"
	SeedCertificates = "certificates.json"
)

// RemoveSeed deletes the seed files in dir.
func RemoveSeed(dir string) error {
	return errors.Join(ignoreMissing(os.Remove(filepath.Join(dir, SeedBackends))),
		ignoreMissing(os.Remove(filepath.Join(dir, SeedCertificates))))
}

func ignoreMissing(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// nextVersion returns a version above every one this client used, and at
// least the current time in milliseconds. Callers hold c.mu.
func (c *Client) nextVersion() int64 {
	now := time.Now().UnixMilli()
	if now > c.version {
		c.version = now
	} else {
		c.version++
	}
	return c.version
}

// push sends one document. It retries, with backoff and until ctx ends,
// when nginx cannot be reached (it may be starting), and once when nginx
// refused its version, from the version nginx holds: the controller
// restarted with an earlier clock, or a stray push stored a version far
// above any clock, where nginx takes only the stored version + 1 (see
// check_version in lua/tidegate/push_store.lua). So no version nginx holds can wedge
// the client. Repeating a push is harmless: its content is the desired
// state, not a diff of a diff.
func (c *Client) push(ctx context.Context, path, contentType string, encode func(version int64) ([]byte, error)) (Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()

	version := c.nextVersion()
	body, err := encode(version)
	if err != nil {
		return Result{}, fmt.Errorf("push %s: encode: %w", path, err)
	}
	backoff := c.minBackoff
	versionRetried := false
	var lastErr error // the last retryable error, for the final report
	for {
		status, ans, raw, err := c.post(ctx, path, contentType, body)
		switch {
		case err != nil:
			if d, ok := ctx.Deadline(); ok && errors.Is(err, fasthttp.ErrTimeout) && !time.Now().Before(d) {
				<-ctx.Done() // the context's deadline cut the exchange short
			}
			if ctx.Err() != nil {
				return Result{}, fmt.Errorf("push %s: %w (last error: %v)", path, ctx.Err(), firstErr(lastErr, err))
			}
			if !retryable(err) {
				return Result{}, fmt.Errorf("push %s: %w", path, err)
			}
			lastErr = err
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return Result{}, fmt.Errorf("push %s: %w (last error: %v)", path, ctx.Err(), err)
			case <-t.C:
			}
			backoff = min(backoff*2, c.maxBackoff)
			continue
		case status == fasthttp.StatusOK:
			res := Result{Changed: ans.Changed, Rejected: ans.Rejected}
			if ans.Version != nil {
				res.Version = *ans.Version
			}
			return res, nil
		case !versionRetried && versionRefused(status, ans):
			versionRetried = true
			// The clock, or the stored version + 1, whichever is larger:
			// both are versions nginx takes.
			c.version = *ans.Version
			version = c.nextVersion()
			if body, err = encode(version); err != nil {
				return Result{}, fmt.Errorf("push %s: encode: %w", path, err)
			}
			continue
		}
		reason := ans.Error
		if reason == "" {
			reason = string(raw)
		}
		return Result{}, &PushError{Path: path, Status: status, Reason: reason, FullRequired: ans.FullRequired}
	}
}

// versionRefused reports whether nginx refused a push for its version
// alone, naming the version it holds: older than that one (409), or above
// 2^50 without being that one + 1 (400). A push onto an empty nginx that
// must be full is another matter (FullRequired).
func versionRefused(status int, ans answer) bool {
	return ans.Version != nil && !ans.FullRequired &&
		(status == fasthttp.StatusConflict || status == fasthttp.StatusBadRequest)
}

// post does one exchange and decodes the JSON answer.
func (c *Client) post(ctx context.Context, path, contentType string, body []byte) (int, answer, []byte, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	req.SetRequestURI("http://tidegate" + path)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType(contentType)
	req.Header.Set(TokenHeader, c.token)
	req.SetBodyRaw(body)

	deadline := time.Now().Add(c.requestTimeout + time.Duration(len(body)>>20)*time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.http.DoDeadline(req, resp, deadline); err != nil {
		return 0, answer{}, nil, err
	}
	raw := append([]byte(nil), resp.Body()...)
	var ans answer
	if err := json.Unmarshal(raw, &ans); err != nil && resp.StatusCode() == fasthttp.StatusOK {
		return 0, answer{}, nil, fmt.Errorf("decode answer %q: %w", raw, err)
	}
	return resp.StatusCode(), ans, raw, nil
}

// dialError marks a failure to connect: the request never reached nginx.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connect to the control socket: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// retryable reports whether a transport error is worth another try: nginx
// not listening yet, or a kept-alive connection it closed meanwhile. After
// a reload the old workers close the control connections they hold, so the
// next push over a pooled one fails on write (EPIPE) or read (ECONNRESET);
// it is sent again on a new connection (see push: repeating is harmless).
func retryable(err error) bool {
	var de *dialError
	return errors.As(err, &de) ||
		errors.Is(err, fasthttp.ErrConnectionClosed) ||
		errors.Is(err, fasthttp.ErrNoFreeConns) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNRESET)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
