package annotations

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Errors are the custom error pages of an Ingress: answers with one of
// Codes are replaced by what DefaultBackend (a Service of the Ingress's
// namespace, else the global default backend) answers, as in ingress-nginx.
// DefaultBackend also serves a path whose Service has no endpoints.
type Errors struct {
	// Codes are the intercepted status codes, sorted, 400 to 599.
	Codes []int
	// DefaultBackend is a Service name in the Ingress's namespace.
	DefaultBackend string
}

func init() {
	register("custom-http-errors", applied(func(v string, c *Config) error {
		codes, err := ErrorCodes(v)
		c.Errors.Codes = codes
		return err
	}))
	register("default-backend", applied(func(v string, c *Config) error {
		v = strings.TrimSpace(v)
		if v == "" || len(v) > 63 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || v[0] == '-' || v[len(v)-1] == '-' {
			return fmt.Errorf("%q is not the name of a Service in the Ingress's namespace (a DNS label: 1 to 63 of a-z, 0-9, '-')", v)
		}
		c.Errors.DefaultBackend = v
		return nil
	}))
}

// ErrorCodes parses a comma-separated list of HTTP status codes from 400 to
// 599 (the annotation and the ConfigMap key custom-http-errors), sorted
// and without duplicates.
func ErrorCodes(v string) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 400 || n > 599 {
			return nil, fmt.Errorf("%q is not an HTTP status code from 400 to 599", f)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no status code given; write a list such as 404,503")
	}
	sort.Ints(out)
	return out, nil
}
