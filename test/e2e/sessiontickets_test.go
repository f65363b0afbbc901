package e2e

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/tlsutil"
	"github.com/tidegate/tidegate/test/harness"
)

// ticketCache is a client session cache that counts the session tickets
// servers gave it. Go's client resumes TLS 1.2 sessions only from tickets,
// never from a session ID.
type ticketCache struct {
	mu       sync.Mutex
	sessions map[string]*tls.ClientSessionState
	tickets  int
	longest  int // bytes of the longest ticket
}

func (c *ticketCache) Get(key string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sessions[key]
	return s, ok
}

func (c *ticketCache) Put(key string, s *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sessions == nil {
		c.sessions = map[string]*tls.ClientSessionState{}
	}
	if s != nil {
		c.tickets++
		if t, _, err := s.ResumptionState(); err == nil {
			c.longest = max(c.longest, len(t))
		}
	}
	c.sessions[key] = s
}

// resumes makes two connections of a TLS version to the HTTPS port with
// one session cache and says how many tickets the server gave, the size of
// the longest, and whether the second connection resumed the first one's
// session.
func (tg *tidegate) resumes(sni string, version uint16) (tickets, longest int, resumed bool, err error) {
	cache := &ticketCache{}
	cfg := &tls.Config{ServerName: sni, InsecureSkipVerify: true, MinVersion: version, MaxVersion: version, ClientSessionCache: cache}
	addr := fmt.Sprintf("127.0.0.1:%d", tg.HTTPSPort)
	for i := range 2 {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
		if err != nil {
			return 0, 0, false, err
		}
		// The ticket comes with the handshake's last flight; a request
		// makes sure it was read.
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", sni)
		buf := make([]byte, 1024)
		_, _ = c.Read(buf)
		if i == 1 {
			resumed = c.ConnectionState().DidResume
		}
		c.Close()
	}
	cache.mu.Lock()
	defer cache.mu.Unlock()
	return cache.tickets, cache.longest, resumed, nil
}

// TestSessionTicketsOffByDefault: nginx gives TLS 1.2 clients no session
// ticket by default, as ingress-nginx (a ticket key lives as long as the
// master or the last reload, and every ticket is as safe as that key), and
// TLS 1.3 clients only tickets that name a session of the cache; with
// ssl-session-tickets, TLS 1.2 clients get sealed tickets and resume from
// them.
func TestSessionTicketsOffByDefault(t *testing.T) {
	be := harness.StartBackends(t, "web")
	crt, key, _ := tlsutil.SelfSigned("tickets.test", "tickets.test")
	tg := startTidegate(t, map[string]string{
		"all.yaml": strings.Join([]string{harness.ServiceYAML("web", 80), harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
			tlsSecretYAML("tickets-tls", crt, key),
			withTLSHost(harness.IngressYAML("tickets", "tickets.test", "Prefix / web:80"), "tickets.test", "tickets-tls")}, "---\n"),
	})
	tickets, _, resumed, err := tg.resumes("tickets.test", tls.VersionTLS12)
	if err != nil {
		t.Fatal(err)
	}
	if tickets != 0 || resumed {
		t.Errorf("TLS 1.2 by default: %d session tickets, resumed %v; want none", tickets, resumed)
	}
	// TLS 1.3 resumes with tickets only: without ssl_session_tickets they
	// name a session of the shared cache (32 bytes, measured) instead of
	// carrying it sealed with the ticket key (208 bytes for TLS 1.2).
	tickets, longest, resumed, err := tg.resumes("tickets.test", tls.VersionTLS13)
	if err != nil || !resumed || tickets == 0 || longest > 48 {
		t.Errorf("TLS 1.3 by default: %d tickets of up to %d bytes, resumed %v, %v; want tickets naming a cached session, resumed", tickets, longest, resumed, err)
	}

	tg.Write("cm.yaml", configMapYAML("ssl-session-tickets", "true"))
	tg.Eventually("ssl-session-tickets gives tickets a client resumes from", func() string {
		tickets, longest, resumed, err := tg.resumes("tickets.test", tls.VersionTLS12)
		if err != nil || tickets == 0 || longest <= 48 || !resumed {
			return fmt.Sprintf("TLS 1.2: %d session tickets of up to %d bytes, resumed %v, %v", tickets, longest, resumed, err)
		}
		return ""
	})
}
