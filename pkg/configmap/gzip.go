package configmap

import (
	"fmt"
	"regexp"
	"strings"
)

// mimeType is a MIME type, or "*" (every type).
var mimeType = regexp.MustCompile(`^(\*|[a-z0-9][a-z0-9_.+-]{0,126}/(\*|[a-z0-9][a-z0-9_.+-]{0,126}))$`)

func init() {
	register("use-gzip", boolean(func(c *Config) *bool { return &c.Settings.UseGzip }))
	register("gzip-level", number(func(c *Config) *int { return &c.Settings.GzipLevel }, 1, 9, "a gzip level"))
	register("gzip-min-length", number(func(c *Config) *int { return &c.Settings.GzipMinLength }, 0, 1<<30, "a number of bytes"))
	register("gzip-types", func(v string, c *Config) error {
		types := strings.Fields(strings.ToLower(v))
		for _, t := range types {
			if !mimeType.MatchString(t) {
				return fmt.Errorf("%q is not a MIME type such as text/html", t)
			}
		}
		if len(types) == 0 {
			return fmt.Errorf("no MIME type given")
		}
		c.Settings.GzipTypes = types
		return nil
	})
}
