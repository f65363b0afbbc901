package model

import (
	"fmt"

	"github.com/tidegate/tidegate/pkg/annotations"
)

// snippetSettings are the controller ConfigMap keys that open the snippet
// and custom-headers annotations.
type snippetSettings struct {
	// allow is allow-snippet-annotations: without it snippets are ignored.
	allow bool
	// allowedHeaders is global-allowed-response-headers, lower-case: the
	// only header names custom-headers may set.
	allowedHeaders map[string]bool
}

// snippetsOff is the report detail of a snippet while the ConfigMap does
// not allow them.
const snippetsOff = `raw nginx snippets are refused unless the controller ConfigMap sets allow-snippet-annotations: "true"; ` +
	"even then tidegate never pastes user text into nginx.conf: only allow-listed directives are re-emitted, argument by argument; use the typed annotations"

// snippetPolicy applies allow-snippet-annotations to one Ingress's parsed
// annotations. Snippets are ignored (reported as unsupported) while it is
// off. While it is on, a snippet with a refused directive rejects the whole
// Ingress, as ingress-nginx's admission webhook refuses an Ingress whose
// snippet breaks nginx -t: serving the Ingress without the snippet could
// open what the snippet was meant to close. It returns true when the
// Ingress is skipped.
func (b *builder) snippetPolicy(key string, cfg *annotations.Config, report []annotations.Entry) bool {
	b.order = append(b.order, key)
	skip := false
	for i, e := range report {
		if !annotations.IsSnippet(e.Key) {
			continue
		}
		if !b.global.snippets.allow {
			report[i].Status, report[i].Detail = annotations.Unsupported, snippetsOff
			continue
		}
		if e.Status == annotations.Rejected {
			b.report(Problem{Kind: "Ingress", Object: key, Field: "metadata.annotations[" + annotations.Prefix + e.Key + "]",
				Reason: e.Detail + "; the whole Ingress is skipped (ingress-nginx's admission would refuse it): fix or remove the snippet"})
			skip = true
		}
	}
	if !b.global.snippets.allow || skip {
		cfg.Snippets = annotations.Snippets{}
	}
	if skip {
		if b.skipped == nil {
			b.skipped = map[string]bool{}
		}
		b.skipped[key] = true
	}
	return skip
}

// finishSnippets gives each server the server-snippet of the oldest
// Ingress that serves a path of it; younger ones are reported.
func (b *builder) finishSnippets(servers []Server) {
	// the Ingresses with a server-snippet, oldest first: usually none, and
	// never worth a walk over every Ingress for every server
	var withSnippet []string
	for _, k := range b.order {
		if len(b.anns[k].Snippets.Server) > 0 {
			withSnippet = append(withSnippet, k)
		}
	}
	if len(withSnippet) == 0 {
		return
	}
	for i := range servers {
		owners := map[string]bool{}
		for _, l := range servers[i].Locations {
			if l.Ingress != "" {
				owners[l.Ingress] = true
			}
		}
		chosen := ""
		for _, k := range withSnippet {
			if !owners[k] {
				continue
			}
			if chosen == "" {
				chosen = k
				servers[i].Snippet = b.anns[k].Snippets.Server
				continue
			}
			b.report(Problem{Kind: "Ingress", Object: k, Field: "metadata.annotations[" + annotations.Prefix + annotations.ServerSnippet + "]", Warning: true,
				Reason: fmt.Sprintf("host %q already uses the server-snippet of the older Ingress %s; this one is ignored for it", displayHost(servers[i].Host), chosen)})
		}
	}
}
