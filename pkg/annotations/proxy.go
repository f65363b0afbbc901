package annotations

import (
	"fmt"
	"strings"

	"github.com/tidegate/tidegate/pkg/nginxvalue"
)

// Proxy holds the proxying annotations. Zero values mean "global setting".
type Proxy struct {
	BodySize         Size
	ClientBodyBuffer Size
	ConnectTimeout   int
	SendTimeout      int
	ReadTimeout      int
	// Buffering and RequestBuffering are "on", "off" or "" (global).
	Buffering        string
	BufferSize       Size
	RequestBuffering string
	// HTTPVersion is "1.0" or "1.1" ("" is 1.1).
	HTTPVersion string
	// NextUpstream is the list of proxy_next_upstream conditions.
	NextUpstream        []string
	NextUpstreamTries   int
	NextUpstreamTimeout int
	// UpstreamVhost replaces the Host header sent to the backend.
	UpstreamVhost string
	// ConnectionHeader replaces the Connection header sent to the backend.
	ConnectionHeader string
	// Protocol is HTTP (""), HTTPS, GRPC or GRPCS.
	Protocol string
	// SSLServerName ("on", "off" or "") sends SNI to an HTTPS or GRPCS
	// backend (proxy-ssl-server-name); SSLName is the name sent
	// (proxy-ssl-name; by default the Host header the backend gets).
	SSLServerName string
	SSLName       string
	// RedirectFrom and RedirectTo rewrite the Location and Refresh headers
	// of the backend's answers (proxy-redirect-from/-to): RedirectFrom
	// "off" or "default" alone, or a literal prefix replaced by
	// RedirectTo, which may read the variables of redirectVars.
	RedirectFrom, RedirectTo string
}

func onOff(v string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "true":
		return "on", nil
	case "off", "false":
		return "off", nil
	}
	return "", fmt.Errorf("%q is not on or off", v)
}

func init() {
	sz := func(dst func(*Config) *Size) func(string, *Config) (Status, string, error) {
		return applied(func(v string, c *Config) error {
			s, err := size(v)
			*dst(c) = s
			return err
		})
	}
	secs := func(dst func(*Config) *int) func(string, *Config) (Status, string, error) {
		return applied(func(v string, c *Config) error {
			n, err := seconds(v)
			*dst(c) = n
			return err
		})
	}
	// A buffer of size 0 is not a buffer: nginx refuses it (found by
	// FuzzRender), while a body size of 0 means "no limit".
	buffer := func(dst func(*Config) *Size) func(string, *Config) (Status, string, error) {
		return applied(func(v string, c *Config) error {
			s, err := size(v)
			if err != nil {
				return err
			}
			if strings.TrimLeft(string(s), "0kmg") == "" {
				return fmt.Errorf("%q: a buffer size must be larger than 0", v)
			}
			// nginx refuses buffers above proxy_max_temp_file_size (1g).
			if n, unit := strings.TrimRight(string(s), "kmg"), strings.TrimLeft(string(s), "0123456789"); unit == "g" || (unit == "m" && len(n) > 3) || (unit == "" && len(n) > 8) {
				return fmt.Errorf("%q: a buffer size must be at most 999m", v)
			}
			*dst(c) = s
			return nil
		})
	}
	register("proxy-body-size", sz(func(c *Config) *Size { return &c.Proxy.BodySize }))
	register("client-body-buffer-size", buffer(func(c *Config) *Size { return &c.Proxy.ClientBodyBuffer }))
	register("proxy-buffer-size", buffer(func(c *Config) *Size { return &c.Proxy.BufferSize }))
	register("proxy-connect-timeout", secs(func(c *Config) *int { return &c.Proxy.ConnectTimeout }))
	register("proxy-send-timeout", secs(func(c *Config) *int { return &c.Proxy.SendTimeout }))
	register("proxy-read-timeout", secs(func(c *Config) *int { return &c.Proxy.ReadTimeout }))
	register("proxy-next-upstream-timeout", secs(func(c *Config) *int { return &c.Proxy.NextUpstreamTimeout }))
	register("proxy-next-upstream-tries", applied(func(v string, c *Config) error {
		n, err := intRange(v, 0, 100)
		c.Proxy.NextUpstreamTries = n
		return err
	}))
	register("proxy-next-upstream", applied(func(v string, c *Config) error {
		conds, err := nginxvalue.Words(v, nginxvalue.NextUpstream,
			"%q is not a proxy_next_upstream condition (error, timeout, invalid_header, http_5xx codes, non_idempotent, off)", "empty list")
		c.Proxy.NextUpstream = conds
		return err
	}))
	register("enable-access-log", applied(func(v string, c *Config) error {
		b, err := boolValue(v)
		c.AccessLogOff = !b
		return err
	}))
	register("proxy-buffering", applied(func(v string, c *Config) error {
		s, err := onOff(v)
		c.Proxy.Buffering = s
		return err
	}))
	register("proxy-request-buffering", applied(func(v string, c *Config) error {
		s, err := onOff(v)
		c.Proxy.RequestBuffering = s
		return err
	}))
	register("proxy-http-version", applied(func(v string, c *Config) error {
		if v != "1.0" && v != "1.1" {
			return fmt.Errorf("%q is not 1.0 or 1.1", v)
		}
		c.Proxy.HTTPVersion = v
		return nil
	}))
	register("upstream-vhost", applied(func(v string, c *Config) error {
		if err := hostHeader(v); err != nil {
			return err
		}
		c.Proxy.UpstreamVhost = v
		return nil
	}))
	register("proxy-redirect-from", applied(func(v string, c *Config) error {
		v = strings.TrimSpace(v)
		if v != "off" && v != "default" {
			if err := redirectPart(v, nil); err != nil {
				return err
			}
		}
		c.Proxy.RedirectFrom = v
		return nil
	}))
	register("proxy-redirect-to", applied(func(v string, c *Config) error {
		v = strings.TrimSpace(v)
		if err := redirectPart(v, redirectVars); err != nil {
			return err
		}
		c.Proxy.RedirectTo = v
		return nil
	}))
	register("connection-proxy-header", applied(func(v string, c *Config) error {
		if err := headerName(v); err != nil {
			return fmt.Errorf("%q is not a Connection header value (a token such as keep-alive or close)", v)
		}
		c.Proxy.ConnectionHeader = v
		return nil
	}))
	register("proxy-ssl-server-name", applied(func(v string, c *Config) error {
		s, err := onOff(v)
		c.Proxy.SSLServerName = s
		return err
	}))
	register("proxy-ssl-name", applied(func(v string, c *Config) error {
		v = strings.ToLower(strings.TrimSpace(v))
		if v == "" || len(v) > 253 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyz0123456789-.") != "" {
			return fmt.Errorf("%q is not a DNS name", v)
		}
		c.Proxy.SSLName = v
		return nil
	}))
	register("backend-protocol", func(v string, c *Config) (Status, string, error) {
		p := strings.ToUpper(strings.TrimSpace(v))
		switch p {
		case "HTTP":
			c.Proxy.Protocol = ""
		case "HTTPS":
			c.Proxy.Protocol = p
		case "GRPC", "GRPCS":
			c.Proxy.Protocol = p
		case "AJP", "FCGI":
			return "", "", fmt.Errorf("backend-protocol %s is not supported; use HTTP, HTTPS, GRPC or GRPCS", p)
		default:
			return "", "", fmt.Errorf("%q is not HTTP, HTTPS, GRPC or GRPCS", v)
		}
		return Applied, "", nil
	})
}

// hostHeader accepts host[:port] with DNS characters.
func hostHeader(v string) error {
	if v == "" || len(v) > 261 {
		return fmt.Errorf("%q is not a host name", v)
	}
	if strings.Trim(strings.ToLower(v), "abcdefghijklmnopqrstuvwxyz0123456789-.:[]") != "" {
		return fmt.Errorf("%q is not a host name (letters, digits, '-', '.', and an optional :port)", v)
	}
	return nil
}

// redirectPart accepts one side of a proxy_redirect: a URL or an absolute
// path of URL characters, reading only the variables of vars. A leading
// '~' (nginx's regex form) is refused.
func redirectPart(v string, vars []string) error {
	if v == "" || len(v) > 1024 {
		return fmt.Errorf("must be 1 to 1024 characters")
	}
	if v[0] == '~' {
		return fmt.Errorf("%q: regular expressions are not supported here; give the literal prefix", v)
	}
	rest := withoutVars(v, vars)
	if strings.ContainsAny(rest, "$\"\\ {};#'`<>") {
		return fmt.Errorf("%q may not contain spaces, quotes, braces, ';', '#' or variables other than %s", v, strings.Join(vars, " "))
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("%q contains %q", v, rune(c))
		}
	}
	if !strings.HasPrefix(rest, "/") && !strings.HasPrefix(rest, "http://") && !strings.HasPrefix(rest, "https://") && !strings.HasPrefix(rest, "$") {
		return fmt.Errorf("%q is not an absolute path or an http(s) URL", v)
	}
	return nil
}
