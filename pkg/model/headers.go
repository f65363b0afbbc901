package model

import (
	"fmt"
	"sort"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/tidegate/tidegate/pkg/annotations"
)

// Header is one response header added to a location's answers.
type Header struct {
	Name  string
	Value string
}

// maxHeaderValue bounds one custom header value.
const maxHeaderValue = 4096

// customHeaders returns the response headers of an Ingress's custom-headers
// ConfigMap, resolved once per Ingress. Any problem with the ConfigMap is
// reported and the Ingress is served without these headers: they are an
// addition to its answers, not a guard.
func (b *builder) customHeaders(ing *networkingv1.Ingress) []Header {
	key := ingressKey(ing)
	if h, done := b.headers[key]; done {
		return h
	}
	if b.headers == nil {
		b.headers = map[string][]Header{}
	}
	h := b.resolveHeaders(ing)
	b.headers[key] = h
	return h
}

func (b *builder) resolveHeaders(ing *networkingv1.Ingress) []Header {
	key := ingressKey(ing)
	h, err := b.configMapHeaders(ing, b.anns[key].Headers, func(name, cmKey string) error {
		if !b.global.snippets.allowedHeaders[strings.ToLower(name)] {
			return fmt.Errorf("header %q of ConfigMap %s is not listed in global-allowed-response-headers of the controller ConfigMap %s; add it there (as ingress-nginx requires) or remove it", name, cmKey, b.opts.ConfigMap)
		}
		return nil
	})
	if err != nil {
		b.report(Problem{Kind: "Ingress", Object: key, Field: "metadata.annotations[" + annotations.Prefix + "custom-headers]", Warning: isNotFound(err),
			Reason: err.Error() + "; the Ingress is served without these headers"})
		return nil
	}
	return h
}

// authProxyHeaders returns the request headers the auth service gets from
// an Ingress's auth-proxy-set-headers ConfigMap, or an error saying what is
// wrong with it.
func (b *builder) authProxyHeaders(ing *networkingv1.Ingress) ([]Header, error) {
	return b.configMapHeaders(ing, b.anns[ingressKey(ing)].ExtAuth.ProxySetHeaders, func(name, cmKey string) error {
		if annotations.ReservedAuthHeader(name) {
			return fmt.Errorf("ConfigMap %s: header %q is set by tidegate for every auth request; remove it", cmKey, name)
		}
		return nil
	})
}

// errNotFound marks a ConfigMap that does not exist (yet): a warning.
type errNotFound struct{ error }

func isNotFound(err error) bool {
	_, ok := err.(errNotFound)
	return ok
}

// configMapHeaders reads header names and values from the ConfigMap ref
// names, which must be in the Ingress's namespace; allowed vets each name.
func (b *builder) configMapHeaders(ing *networkingv1.Ingress, ref annotations.CustomHeaders, allowed func(name, cmKey string) error) ([]Header, error) {
	if ref.Name == "" {
		return nil, nil
	}
	ns := ref.Namespace
	if ns == "" {
		ns = ing.Namespace
	}
	cmKey := ns + "/" + ref.Name
	if ns != ing.Namespace {
		return nil, fmt.Errorf("ConfigMap %s is in another namespace: tidegate reads headers only from a ConfigMap in the Ingress's namespace %s; copy it there", cmKey, ing.Namespace)
	}
	cm := b.snap.ConfigMap(ns, ref.Name)
	if cm == nil {
		return nil, errNotFound{fmt.Errorf("ConfigMap %s not found; create it (keys are header names, values header values)", cmKey)}
	}
	names := make([]string, 0, len(cm.Data))
	for k := range cm.Data {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]Header, 0, len(names))
	for _, name := range names {
		if err := annotations.HeaderName(name); err != nil {
			return nil, fmt.Errorf("ConfigMap %s key %q is not a header name: %v", cmKey, name, err)
		}
		if err := allowed(name, cmKey); err != nil {
			return nil, err
		}
		v := cm.Data[name]
		if len(v) > maxHeaderValue {
			return nil, fmt.Errorf("ConfigMap %s: the value of %q is longer than %d characters", cmKey, name, maxHeaderValue)
		}
		for i := 0; i < len(v); i++ {
			if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
				return nil, fmt.Errorf("ConfigMap %s: the value of %q contains a control character (0x%02x); remove it", cmKey, name, c)
			}
		}
		out = append(out, Header{Name: name, Value: v})
	}
	return out, nil
}
