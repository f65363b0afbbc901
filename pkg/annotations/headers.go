package annotations

import (
	"fmt"
	"strings"
)

// CustomHeaders is the custom-headers annotation: a ConfigMap whose
// key/value pairs are added as response headers on the Ingress's
// locations. The model resolves the ConfigMap (pkg/model/headers.go).
type CustomHeaders struct {
	// Namespace is "" when the annotation names the ConfigMap without one
	// (the Ingress's namespace is meant).
	Namespace string
	Name      string
}

// customHeadersDifference is what an ingress-nginx user should know.
const customHeadersDifference = "the ConfigMap must be in the Ingress's namespace; only header names listed in the controller ConfigMap's global-allowed-response-headers are accepted (as in ingress-nginx); " +
	"headers are added with add_header ... always, so a backend header of the same name is sent too (ingress-nginx replaces it), and values are sent literally ('$' is not a variable)"

func init() {
	register("custom-headers", func(v string, c *Config) (Status, string, error) {
		ref, err := configMapRef(v)
		if err != nil {
			return "", "", err
		}
		c.Headers = ref
		return Different, customHeadersDifference, nil
	})
}

// configMapRef parses "[NAMESPACE/]CONFIGMAP".
func configMapRef(v string) (CustomHeaders, error) { return objectRef(v, "ConfigMap") }

// objectRef parses "[NAMESPACE/]NAME" of an object of kind: a DNS label
// and a DNS subdomain, as the API server requires. Namespace is "" when v
// names none.
func objectRef(v, kind string) (CustomHeaders, error) {
	v = strings.TrimSpace(v)
	ns, name, qualified := strings.Cut(v, "/")
	if !qualified {
		ns, name = "", v
	} else if err := dnsLabel(ns); err != nil {
		return CustomHeaders{}, fmt.Errorf("%q: namespace %v; write NAME or NAMESPACE/NAME of a %s", v, err, kind)
	}
	if err := dnsSubdomain(name); err != nil {
		return CustomHeaders{}, fmt.Errorf("%q: %s name %v; write NAME or NAMESPACE/NAME of a %s", v, kind, err, kind)
	}
	return CustomHeaders{Namespace: ns, Name: name}, nil
}

// dnsLabel accepts a Kubernetes namespace name.
func dnsLabel(s string) error {
	if s == "" || len(s) > 63 {
		return fmt.Errorf("must be 1 to 63 characters")
	}
	if strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || s[0] == '-' || s[len(s)-1] == '-' {
		return fmt.Errorf("%q must be a DNS label (a-z, 0-9, '-')", s)
	}
	return nil
}

// dnsSubdomain accepts a Kubernetes object name.
func dnsSubdomain(s string) error {
	if s == "" || len(s) > 253 {
		return fmt.Errorf("must be 1 to 253 characters")
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q must be a DNS subdomain (labels of a-z, 0-9 and '-' joined by '.')", s)
		}
	}
	return nil
}

// HeaderName reports whether v is an HTTP token (RFC 9110) usable as a
// header name; the model checks ConfigMap keys with it.
func HeaderName(v string) error { return headerName(v) }
