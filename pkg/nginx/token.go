package nginx

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
)

// The control token. Every request to the control socket (the pushes, the
// generation, stub_status) must carry it in the TokenHeader header, or
// nginx refuses it with 403 and does nothing (lua/tidegate/control.lua):
// reaching the socket, through a proxy_pass nginx was tricked into or from
// a local process, is not enough to read or change what nginx serves.
//
// tidegate makes the token once per working directory and keeps it in
// run/ (0700), in a file only its user reads (0600). nginx's master reads
// it in init_by_lua, before it forks workers, which may run as a user that
// cannot read the file; a reload reads it again. A restarted tidegate reads
// the same token back, so it can talk to an nginx that outlived it.

// TokenHeader is the request header that carries the control token.
// pkg/dynamic sends it under the same name (dynamic.TokenHeader): the two
// packages do not import each other.
const TokenHeader = "X-Tidegate-Token"

// tokenBytes is the token's entropy; it is written as twice as many
// lower-case hex digits, the only form nginx accepts.
const tokenBytes = 32

// TokenPath is the control token's file, as control.lua finds it under
// nginx's prefix.
func (s Settings) TokenPath() string { return filepath.Join(s.WorkDir, "run", "control.token") }

// ControlToken returns the token in the file at path, or makes a new one
// there when the file is missing or does not hold a well-formed token.
// Its directory must exist.
func ControlToken(path string) (token string, made bool, err error) {
	token, err = ReadToken(path)
	if err == nil {
		// owner-only, whoever wrote it
		if err := os.Chmod(path, 0o600); err != nil {
			return "", false, fmt.Errorf("control token: %w", err)
		}
		return token, false, nil
	}
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", false, fmt.Errorf("control token: %w", err)
	}
	token = hex.EncodeToString(b)
	// Written aside and renamed: a master starting meanwhile reads the old
	// file or the new one, never half of one.
	f, err := os.CreateTemp(filepath.Dir(path), ".control.token-*") // 0600
	if err != nil {
		return "", false, fmt.Errorf("control token: %w", err)
	}
	_, werr := f.WriteString(token)
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(f.Name())
		return "", false, fmt.Errorf("control token: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return "", false, fmt.Errorf("control token: %w", err)
	}
	return token, true, nil
}

// ReadToken returns the token in the file at path; it fails if the file is
// missing or holds anything but tokenBytes*2 lower-case hex digits (what
// nginx would refuse too).
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("control token: %w", err)
	}
	if !wellFormed(b) {
		return "", fmt.Errorf("control token %s: not %d lower-case hex digits", path, 2*tokenBytes)
	}
	return string(b), nil
}

func wellFormed(b []byte) bool {
	if len(b) != 2*tokenBytes {
		return false
	}
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Token is the control token of the working directory.
func (p *Process) Token() string { return p.token }

// WithToken returns a RoundTripper that sends every request with base,
// carrying token in TokenHeader: an http.Client for the control socket.
func WithToken(base http.RoundTripper, token string) http.RoundTripper {
	return &tokenTransport{base: base, token: token}
}

type tokenTransport struct {
	base  http.RoundTripper
	token string
}

func (t *tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context()) // a RoundTripper must not change its request
	r.Header.Set(TokenHeader, t.token)
	return t.base.RoundTrip(r)
}
