package configmap

import (
	"fmt"

	"github.com/tidegate/tidegate/pkg/annotations"
)

func init() {
	// The codes take the custom-http-errors annotation's syntax; the model
	// sends them to the default backend (model/errors.go).
	registerFallback("custom-http-errors", "no custom error pages are used", func(v string, c *Config) error {
		codes, err := annotations.ErrorCodes(v)
		if err != nil {
			return fmt.Errorf("%v (a list such as 404,503 of codes 400-599)", err)
		}
		c.CustomHTTPErrors = codes
		return nil
	})
}
