package configmap

import (
	"strings"

	"github.com/tidegate/tidegate/pkg/annotations"
)

// The keys that open the snippet and custom-headers annotations; the model
// applies them to each Ingress (model/snippets.go, model/headers.go).
func init() {
	register("allow-snippet-annotations", boolean(func(c *Config) *bool { return &c.AllowSnippetAnnotations }))
	register("global-allowed-response-headers", func(v string, c *Config) error {
		allowed := map[string]bool{}
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h == "" {
				continue
			}
			if err := annotations.HeaderName(h); err != nil {
				return err
			}
			allowed[strings.ToLower(h)] = true
		}
		c.AllowedResponseHeaders = allowed
		return nil
	})
}
