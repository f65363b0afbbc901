package configmap

import (
	"regexp"
	"strings"

	"github.com/tidegate/tidegate/pkg/nginxvalue"
)

// mimeType is a MIME type, or "*" (every type).
var mimeType = regexp.MustCompile(`^(\*|[a-z0-9][a-z0-9_.+-]{0,126}/(\*|[a-z0-9][a-z0-9_.+-]{0,126}))$`)

func init() {
	register("use-gzip", boolean(func(c *Config) *bool { return &c.Settings.UseGzip }))
	register("gzip-level", number(func(c *Config) *int { return &c.Settings.GzipLevel }, 1, 9, "a gzip level"))
	register("gzip-min-length", number(func(c *Config) *int { return &c.Settings.GzipMinLength }, 0, 1<<30, "a number of bytes"))
	register("gzip-types", func(v string, c *Config) error {
		types, err := nginxvalue.Words(strings.ToLower(v), mimeType.MatchString, "%q is not a MIME type such as text/html", "no MIME type given")
		if err == nil {
			c.Settings.GzipTypes = types
		}
		return err
	})
}
