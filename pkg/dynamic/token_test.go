package dynamic

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidegate/tidegate/pkg/dynamic/dynamictest"
	"github.com/tidegate/tidegate/pkg/model"
)

// TestControlNeedsToken: a control request without the token, or with a
// wrong one, is refused with 403 and a reason before its body is looked
// at, and changes nothing; a client with the token pushes.
func TestControlNeedsToken(t *testing.T) {
	ng, c := start(t)
	a := dynamictest.StartBackend(t, "a")
	push(t, c, backend(kibana, ep{b: a}))
	stored, _ := ng.Workers(t)
	wipe := fmt.Sprintf(`{"version":%d,"full":true,"backends":[],"removed":[]}`, stored+1)
	requests := []struct{ method, path, body string }{
		{"POST", BackendsPath, wipe},
		{"POST", CertificatesPath, fmt.Sprintf(`{"version":%d,"full":true,"certificates":[],"removed":[]}`, stored+1)},
		{"GET", "/tidegate/workers", ""},
		{"GET", "/other", ""},
		{"POST", BackendsPath, "not even JSON"},
	}
	for name, h := range map[string]http.Header{
		"no token":        {},
		"empty":           {TokenHeader: {""}},
		"wrong":           {TokenHeader: {strings.Repeat("0", len(ng.Token))}},
		"upper case":      {TokenHeader: {strings.ToUpper(ng.Token)}},
		"one digit short": {TokenHeader: {ng.Token[1:]}},
		"one digit more":  {TokenHeader: {ng.Token + "a"}},
		"in a cookie":     {"Cookie": {"X-Tidegate-Token=" + ng.Token}},
	} {
		for _, r := range requests {
			status, body := ng.ControlHeader(t, r.method, r.path, h, []byte(r.body))
			var ans struct{ Error string }
			if err := json.Unmarshal([]byte(body), &ans); status != 403 || err != nil || !strings.Contains(ans.Error, TokenHeader) {
				t.Errorf("%s: %s %s: got %d %q, want 403 naming %s", name, r.method, r.path, status, body, TokenHeader)
			}
		}
	}
	if v, _ := ng.Workers(t); v != stored {
		t.Errorf("stored version %d after refused pushes, want %d", v, stored)
	}
	if status, body := ng.Get(t, "/kibana"); status != 200 || body != "a" {
		t.Errorf("after refused pushes: got %d %q, want 200 a", status, body)
	}
	// The wrong token from a client: a push error naming the refusal.
	var pe *PushError
	err := New(ng.Socket, strings.Repeat("f", len(ng.Token))).PushBackends(ctx(t), true, nil, nil)
	if !errors.As(err, &pe) || pe.Status != 403 || !strings.Contains(pe.Reason, "wrong "+TokenHeader) {
		t.Errorf("client with a wrong token: got %v, want a 403 PushError", err)
	}
	if status, body := ng.Control(t, "POST", BackendsPath, []byte(wipe)); status != 200 {
		t.Fatalf("push with the token: %d %s", status, body)
	}
	if status, _ := ng.Get(t, "/kibana"); status != 503 {
		t.Errorf("after the push with the token: got %d, want 503", status)
	}
}

// TestControlFailsClosed: nginx started without a readable, well-formed
// token refuses every control request, even one with the token the test
// holds, and says why in its error log.
func TestControlFailsClosed(t *testing.T) {
	t.Parallel()
	tests := map[string]func(path string) error{
		"missing": os.Remove,
		"empty":   func(p string) error { return os.WriteFile(p, nil, 0o600) },
		"not hex": func(p string) error { return os.WriteFile(p, []byte(strings.Repeat("g", 64)), 0o600) },
		"upper case": func(p string) error {
			b, _ := os.ReadFile(p)
			return os.WriteFile(p, []byte(strings.ToUpper(string(b))), 0o600)
		},
		"newline":     func(p string) error { b, _ := os.ReadFile(p); return os.WriteFile(p, append(b, '\n'), 0o600) },
		"a directory": func(p string) error { return errors.Join(os.Remove(p), os.Mkdir(p, 0o700)) },
	}
	for name, spoil := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ng := dynamictest.New(t, dynamictest.Locations{"/kibana": kibana})
			if err := spoil(filepath.Join(ng.Dir, "run", "control.token")); err != nil {
				t.Fatal(err)
			}
			ng.Start(t)
			status, body := ng.Control(t, "GET", "/tidegate/workers", nil)
			if status != 403 || !strings.Contains(body, "no control token") {
				t.Errorf("got %d %q, want 403: no control token", status, body)
			}
			err := New(ng.Socket, ng.Token).PushBackends(ctx(t), true, []model.Backend{backend(kibana)}, nil)
			var pe *PushError
			if !errors.As(err, &pe) || pe.Status != 403 {
				t.Errorf("push: got %v, want 403", err)
			}
			if log := ng.ErrorLog(); !strings.Contains(log, "every control request is refused") {
				t.Errorf("the error log does not say why:\n%s", log)
			}
		})
	}
}
