package configmap

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tidegate/tidegate/pkg/nginxvalue"
)

// Buffers are the ConfigMap's request and response buffer sizes (nginx
// sizes, validated).
type Buffers struct {
	// ProxyBufferSize and ProxyBuffersNumber size the buffers for a
	// backend's answer (proxy-buffer-size, proxy-buffers-number): headers
	// larger than ProxyBufferSize make nginx answer 502.
	ProxyBufferSize    string
	ProxyBuffersNumber int
	// ClientHeaderBufferSize and LargeClientHeaderBuffers ("4 16k") hold
	// request headers: a larger request line or header is refused with 414
	// or 400 (large-client-header-buffers, client-header-buffer-size).
	ClientHeaderBufferSize   string
	LargeClientHeaderBuffers string
	// ClientBodyBufferSize is the request body kept in memory before a
	// temporary file (client-body-buffer-size; the annotation overrides it).
	ClientBodyBufferSize string
	// UnderscoresInHeaders passes request headers with "_" in their names
	// (enable-underscores-in-headers); nginx drops them by default.
	UnderscoresInHeaders bool
}

func init() {
	register("proxy-buffer-size", bufferSize(func(c *Config) *string { return &c.Settings.Buffers.ProxyBufferSize }))
	// nginx needs its busy buffers (twice the buffer size) below all
	// buffers but one: fewer than 4 fails nginx -t.
	register("proxy-buffers-number", number(func(c *Config) *int { return &c.Settings.Buffers.ProxyBuffersNumber }, 4, 1024, "a number"))
	register("client-header-buffer-size", bufferSize(func(c *Config) *string { return &c.Settings.Buffers.ClientHeaderBufferSize }))
	register("client-body-buffer-size", bufferSize(func(c *Config) *string { return &c.Settings.Buffers.ClientBodyBufferSize }))
	register("large-client-header-buffers", func(v string, c *Config) error {
		f := strings.Fields(v)
		if len(f) != 2 {
			return fmt.Errorf(`value %q is not "NUMBER SIZE" such as "4 16k"`, v)
		}
		n, _ := strconv.Atoi(f[0])
		if n < 1 || n > 1024 || !nginxvalue.BufferSize(f[1]) {
			return fmt.Errorf(`value %q is not "NUMBER SIZE" such as "4 16k"`, v)
		}
		c.Settings.Buffers.LargeClientHeaderBuffers = fmt.Sprintf("%d %s", n, f[1])
		return nil
	})
	register("enable-underscores-in-headers", boolean(func(c *Config) *bool { return &c.Settings.Buffers.UnderscoresInHeaders }))
}

// bufferSize sets dst from an nginx buffer size (spaces trimmed).
func bufferSize(dst func(*Config) *string) func(string, *Config) error {
	return func(v string, c *Config) error {
		v = strings.TrimSpace(v)
		if !nginxvalue.BufferSize(v) {
			return fmt.Errorf("value %q is not an nginx size from 1k to 64m such as 16k", v)
		}
		*dst(c) = v
		return nil
	}
}
