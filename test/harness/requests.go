package harness

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidegate/tidegate/pkg/echo"
)

// Reply is what the echo backend answered, with the status code.
type Reply struct {
	Status int
	echo.Reply
	Body     string
	Location string
}

// Fresh sends GET http://host/path to tidegate's HTTP port on a new
// connection (a reload closes kept-alive ones, and nginx may close one
// while a refused header is still being written), with extra headers
// "Name: value"; the body is read. An error is returned, not fatal.
func (tg *Tidegate) Fresh(host, path string, headers ...string) (*http.Response, string, error) {
	req, err := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", tg.HTTPPort, path), nil)
	if err != nil {
		return nil, "", err
	}
	req.Host = host
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	return resp, ReadBody(resp), nil
}

// ReadBody reads and closes resp's body, returning what arrived before
// any error.
func ReadBody(resp *http.Response) string {
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// Get sends GET http://host/path to tidegate's HTTP port.
func (tg *Tidegate) Get(host, path string) Reply {
	return tg.Do(tg.Client, "http", tg.HTTPPort, host, path)
}

// Do sends GET scheme://127.0.0.1:port/path with Host host through c; a
// failed request is Status -1 with the error as Body.
func (tg *Tidegate) Do(c *http.Client, scheme string, port int, host, path string) Reply {
	tg.T.Helper()
	req, err := http.NewRequest("GET", fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, port, path), nil)
	if err != nil {
		tg.T.Fatal(err)
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return Reply{Status: -1, Body: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := Reply{Status: resp.StatusCode, Body: string(b), Location: resp.Header.Get("Location")}
	_ = json.Unmarshal(b, &r.Reply)
	return r
}

// GetTLS sends GET https://host/path with SNI host and returns the reply
// and the serving certificate's common name and serial.
func (tg *Tidegate) GetTLS(sni, path string) (Reply, string, string) {
	tg.T.Helper()
	var cn, serial string
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: sni, InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				cn = cs.PeerCertificates[0].Subject.CommonName
				serial = cs.PeerCertificates[0].SerialNumber.String()
				return nil
			}},
		DisableKeepAlives: true,
	}}
	r := tg.Do(c, "https", tg.HTTPSPort, sni, path)
	return r, cn, serial
}

// Raw writes text as it is on a new connection to the HTTP port and
// returns everything nginx answers until it closes the connection (send
// "Connection: close").
func (tg *Tidegate) Raw(text string) string {
	tg.T.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", tg.HTTPPort), 10*time.Second)
	if err != nil {
		tg.T.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, text)
	b, _ := io.ReadAll(conn)
	return string(b)
}

// Eventually retries f until it returns "" or Patience runs out, and fails
// with f's last message.
func (tg *Tidegate) Eventually(what string, f func() string) {
	tg.T.Helper()
	retry(tg.T, Patience, 20*time.Millisecond, what, f)
}

// Hammer sends GET requests to host from n goroutines until the returned
// stop is called, which reports how many were sent and how many failed
// (any status but 200; the first few are logged).
func (tg *Tidegate) Hammer(host string, n int) (stop func() (sent, failed int64)) {
	var sentN, failedN atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				sentN.Add(1)
				if r := tg.Get(host, "/"); r.Status != 200 {
					if failedN.Add(1) <= 3 {
						tg.T.Logf("failed request to %s: %d %.200s", host, r.Status, r.Body)
					}
				}
			}
		}()
	}
	return func() (int64, int64) {
		close(done)
		wg.Wait()
		return sentN.Load(), failedN.Load()
	}
}
