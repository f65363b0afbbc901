package model

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/tidegate/tidegate/pkg/annotations"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// Annotation and label keys the model reads directly.
const (
	// LegacyClassAnnotation is the pre-IngressClass way to pick a controller.
	LegacyClassAnnotation = "kubernetes.io/ingress.class"
	// DefaultClassAnnotation marks an IngressClass as the cluster default.
	DefaultClassAnnotation = "ingressclass.kubernetes.io/is-default-class"
)

// Options are the controller settings that shape the translation.
type Options struct {
	// IngressClass is the IngressClass name this controller serves.
	IngressClass string
	// ControllerClass is the spec.controller value of IngressClasses it serves.
	ControllerClass string
	// WatchWithoutClass also serves Ingresses that name no class at all.
	WatchWithoutClass bool
	// ConfigMap is "namespace/name" of the global settings ConfigMap.
	ConfigMap string
	// DefaultBackendService is "namespace/name" of the Service that answers
	// requests no rule matches (instead of the built-in 404).
	DefaultBackendService string
	// DefaultSSLCertificate is "namespace/name" of the TLS Secret served
	// for every name no other certificate serves (instead of tidegate's
	// self-signed one).
	DefaultSSLCertificate string
	// Targets says where URLs of Ingresses may point nginx (targets.go).
	Targets TargetPolicy
}

// DefaultOptions returns the defaults of the command line.
func DefaultOptions() Options {
	return Options{
		IngressClass:    "tidegate",
		ControllerClass: "tidegate.io/ingress-controller",
		ConfigMap:       "tidegate/tidegate",
	}
}

// Build translates a snapshot into a model. It is pure and deterministic.
func Build(snap *snapshot.Snapshot, opts Options) *Model { return build(snap, opts, nil) }

// build is Build reusing what prev parsed of the Ingresses that are still the
// same objects (prev may be nil).
func build(snap *snapshot.Snapshot, opts Options, prev *Model) *Model {
	n := len(snap.Ingresses)
	b := &builder{snap: snap, opts: opts, servers: make(map[string]*serverBuilder, n), backends: make(map[string]*Backend, n),
		sources: make(map[string]endpointSource, n)}
	if prev != nil {
		b.prevParsed = prev.parsed
	}
	b.global = parseGlobal(snap, opts, b.report)
	ours := b.validNames(b.ourIngresses())
	b.parseAnnotations(ours)
	for _, ing := range ours {
		if b.skipped[ingressKey(ing)] { // snippets.go
			continue
		}
		b.addIngress(ing)
	}
	b.attachCanaries() // canary.go
	b.addDefaultBackend()
	return b.finish()
}

type builder struct {
	snap     *snapshot.Snapshot
	opts     Options
	global   globalSettings
	servers  map[string]*serverBuilder // by host; "" is the catch-all
	backends map[string]*Backend
	// sources say where the endpoints of backends come from
	// (incremental.go).
	sources map[string]endpointSource
	certs   map[string]*Certificate // by secret key
	// certByHost is the secret key each TLS host already uses.
	certByHost map[string]string
	defaultB   string // catch-all backend from an Ingress defaultBackend
	problems   []Problem
	// redirects are from-to-www-redirect names: from → to.
	redirects map[string]string
	// authFiles are htpasswd contents by file ID.
	authFiles map[string]string
	// anns is the parsed annotation config per Ingress key.
	anns map[string]annotations.Config
	// pushed are the balancing and canary settings of each Ingress, kept
	// out of anns (and so out of Structure): they are pushed to Lua, and
	// changing them must not reload nginx.
	pushed map[*networkingv1.Ingress]pushedAnnotations
	compat map[string][]annotations.Entry
	// regexHosts are hosts where some Ingress uses regex paths: ingress-nginx
	// then treats every path of the host as a regex.
	regexHosts map[string]bool
	// balancingDefault is the ConfigMap's load-balance (balancing.go).
	balancingDefault string
	// canaries are the paths of canary Ingresses (canary.go).
	canaries []pendingCanary
	// errs is the state of custom error pages (errors.go).
	errs errorsState
	// skipped are Ingresses refused whole (a rejected snippet), and order
	// lists Ingress keys oldest first (snippets.go).
	skipped map[string]bool
	order   []string
	// headers caches the custom-headers of each Ingress (headers.go).
	headers map[string][]Header
	// parsed is annotations.Parse of each Ingress, by object; prevParsed
	// is the previous model's, reused for objects that did not change.
	parsed, prevParsed map[*networkingv1.Ingress]*parsedAnnotations
}

// parsedAnnotations is what annotations.Parse returned for one Ingress
// object. Objects in snapshots are never modified (a change is a new
// object), so it holds for as long as the object is in a snapshot: a model
// keeps it for the next build (a structural change of one Ingress among
// 10,000 parses one). Neither part may be modified; the builder copies the
// report before it changes entries.
type parsedAnnotations struct {
	cfg    annotations.Config
	report []annotations.Entry
}

// parseAnnotations parses the annotations of every Ingress up front: regex
// mode is decided per host, across Ingresses.
func (b *builder) parseAnnotations(ings []*networkingv1.Ingress) {
	b.anns = make(map[string]annotations.Config, len(ings))
	b.pushed = make(map[*networkingv1.Ingress]pushedAnnotations, len(ings))
	b.parsed = map[*networkingv1.Ingress]*parsedAnnotations{}
	b.compat = map[string][]annotations.Entry{}
	b.regexHosts = map[string]bool{}
	for _, ing := range ings {
		key := ingressKey(ing)
		var cfg annotations.Config
		var report []annotations.Entry
		if p := b.prevParsed[ing]; p != nil {
			b.parsed[ing] = p
			cfg, report = p.cfg, slices.Clone(p.report)
		} else {
			cfg, report = annotations.Parse(ing.Annotations)
			if len(report) > 0 { // without annotations, parsing costs less than keeping
				b.parsed[ing] = &parsedAnnotations{cfg: cfg, report: slices.Clone(report)}
			}
		}
		b.pushed[ing] = pushedAnnotations{Balancing: cfg.Balancing, Canary: cfg.Canary}
		cfg.Balancing, cfg.Canary = annotations.Balancing{}, annotations.Canary{}
		skip := b.snippetPolicy(key, &cfg, report) // snippets.go
		b.targetPolicy(&cfg, report)               // targets.go
		b.anns[key] = cfg
		if len(report) > 0 {
			b.compat[key] = report
		}
		for _, e := range report {
			if e.Status == annotations.Rejected && !(skip && annotations.IsSnippet(e.Key)) {
				b.report(Problem{Kind: "Ingress", Object: key, Field: "metadata.annotations[" + annotations.Prefix + e.Key + "]",
					Reason: e.Detail + "; the annotation is ignored"})
			}
		}
		if cfg.Rewrite.UseRegex && !skip {
			for _, r := range ing.Spec.Rules {
				b.regexHosts[lower(r.Host)] = true
			}
		}
	}
}

// pushedAnnotations are the settings of an Ingress's annotations that are
// pushed to Lua, not rendered (balancing.go, canary.go).
type pushedAnnotations struct {
	Balancing annotations.Balancing
	Canary    annotations.Canary
}

// dataPlane returns the pushed settings of ing, parsed by parseAnnotations.
func (b *builder) dataPlane(ing *networkingv1.Ingress) pushedAnnotations {
	if p, ok := b.pushed[ing]; ok {
		return p
	}
	cfg, _ := annotations.Parse(ing.Annotations)
	return pushedAnnotations{Balancing: cfg.Balancing, Canary: cfg.Canary}
}

func (b *builder) report(p Problem) { b.problems = append(b.problems, p) }

// validNames drops Ingresses whose namespace or name the API server would
// have refused (a manifest directory is not validated by anyone else):
// both reach nginx.conf as labels.
func (b *builder) validNames(ings []*networkingv1.Ingress) []*networkingv1.Ingress {
	out := ings[:0:0]
	for _, ing := range ings {
		if err := validateLabelish(ing.Namespace); err != nil || len(ing.Namespace) > 63 {
			b.report(Problem{Kind: "Ingress", Object: ingressKey(ing), Field: "metadata.namespace",
				Reason: fmt.Sprintf("namespace %q is not a DNS label (1 to 63 of a-z, 0-9, '-'); the Ingress is skipped", ing.Namespace)})
			continue
		}
		if err := validateLabelish(ing.Name); err != nil {
			b.report(Problem{Kind: "Ingress", Object: ingressKey(ing), Field: "metadata.name",
				Reason: fmt.Sprintf("name %q is not a DNS subdomain (1 to 253 of a-z, 0-9, '-', '.'); the Ingress is skipped", ing.Name)})
			continue
		}
		out = append(out, ing)
	}
	return out
}

// ourIngresses returns the Ingresses of this controller's class, oldest first
// (creation time, then namespace/name), which is the order conflicts are
// settled in.
func (b *builder) ourIngresses() []*networkingv1.Ingress {
	ours := map[string]bool{}
	defaultClass := false
	for _, ic := range b.snap.IngressClasses {
		if ic.Spec.Controller != b.opts.ControllerClass {
			continue
		}
		ours[ic.Name] = true
		if ic.Annotations[DefaultClassAnnotation] == "true" {
			defaultClass = true
		}
	}
	// Without an IngressClass object (a manifest directory often has none) the
	// configured class name still counts as ours, unless an IngressClass of
	// that name belongs to another controller.
	if !ours[b.opts.IngressClass] && !b.classExists(b.opts.IngressClass) {
		ours[b.opts.IngressClass] = true
	}
	var out []*networkingv1.Ingress
	for _, ing := range b.snap.Ingresses {
		switch {
		case ing.Spec.IngressClassName != nil:
			if ours[*ing.Spec.IngressClassName] {
				out = append(out, ing)
			}
		case ing.Annotations[LegacyClassAnnotation] != "":
			if ing.Annotations[LegacyClassAnnotation] == b.opts.IngressClass {
				out = append(out, ing)
			}
		case defaultClass || b.opts.WatchWithoutClass:
			out = append(out, ing)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		ti, tj := out[i].CreationTimestamp, out[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return keyLess(out[i].Namespace, out[i].Name, out[j].Namespace, out[j].Name)
	})
	return out
}

// keyLess reports snapshot.Key(ans, an) < snapshot.Key(bns, bn) without
// building either string (this sort compares every pair of Ingresses
// created at the same time, often all of them).
func keyLess(ans, an, bns, bn string) bool {
	if ans == bns {
		return an < bn
	}
	n := min(len(ans), len(bns))
	if ans[:n] != bns[:n] {
		return ans[:n] < bns[:n]
	}
	// One namespace is a prefix of the other: its "/" meets the other's
	// next byte.
	switch {
	case len(ans) < len(bns) && bns[n] != '/':
		return '/' < bns[n]
	case len(bns) < len(ans) && ans[n] != '/':
		return ans[n] < '/'
	}
	return snapshot.Key(ans, an) < snapshot.Key(bns, bn)
}

func (b *builder) classExists(name string) bool {
	for _, ic := range b.snap.IngressClasses {
		if ic.Name == name {
			return true
		}
	}
	return false
}

// finish sorts everything into the final model.
func (b *builder) finish() *Model {
	b.addDefaultCertificate() // certificates.go
	m := &Model{Problems: b.problems, Compat: b.compat, opts: b.opts, sources: b.sources, parsed: b.parsed}
	m.Structure.Global = b.global.Global
	m.Structure.DefaultBackend = b.defaultB
	for name, content := range b.authFiles {
		m.Structure.AuthFiles = append(m.Structure.AuthFiles, AuthFile{Name: name, Content: content})
	}
	sort.Slice(m.Structure.AuthFiles, func(i, j int) bool { return m.Structure.AuthFiles[i].Name < m.Structure.AuthFiles[j].Name })
	hosts := make([]string, 0, len(b.servers))
	for h := range b.servers {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	m.Structure.Servers = make([]Server, 0, len(hosts))
	for _, h := range hosts {
		m.Structure.Servers = append(m.Structure.Servers, b.servers[h].server(b.defaultB, b.global.SSLRedirect, b.global.ForceSSLRedirect))
	}
	m.Structure.Redirects = b.finishNames(m.Structure.Servers)
	b.finishErrors(m.Structure.Servers) // errors.go
	b.finishSnippets(m.Structure.Servers)
	m.Problems = b.problems
	names := make([]string, 0, len(b.backends))
	for n := range b.backends {
		names = append(names, n)
	}
	sort.Strings(names)
	m.Dynamic.Backends = make([]Backend, 0, len(names))
	for _, n := range names {
		m.Dynamic.Backends = append(m.Dynamic.Backends, *b.backends[n])
	}
	m.Structure.LogPhase = needsLogPhase(m.Dynamic.Backends)
	ids := make([]string, 0, len(b.certs))
	for id := range b.certs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	m.Dynamic.Certificates = make([]Certificate, 0, len(ids))
	for _, id := range ids {
		if len(b.certs[id].Hosts) == 0 {
			continue
		}
		c := *b.certs[id]
		sort.Strings(c.Hosts)
		m.Dynamic.Certificates = append(m.Dynamic.Certificates, c)
	}
	sort.SliceStable(m.Problems, func(i, j int) bool {
		return m.Problems[i].String() < m.Problems[j].String()
	})
	return m
}

func ingressKey(ing *networkingv1.Ingress) string { return snapshot.Key(ing.Namespace, ing.Name) }

func lower(s string) string { return strings.ToLower(s) }
