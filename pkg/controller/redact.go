package controller

import (
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/tidegate/tidegate/pkg/confparse"
)

// The status page is read by whoever reaches the status port, who is not
// necessarily allowed to read the Ingresses it describes. Annotation values
// may carry credentials: a token in the query of an auth-url or a redirect,
// user information in a URL, a header value in a snippet, the value a
// canary header must carry. The page shows such values with those parts
// hidden, and hides them too wherever a message quotes the value (a
// rejection's reason does). Annotation keys, header and query parameter
// names, hosts and paths stay visible: they are what an operator reads the
// page for. Nothing from a Secret's data ever reaches the page: problems
// name Secrets, never their content.

// hidden replaces a hidden part.
const hidden = "***"

// urlKeys are the annotations whose whole value is a URL (or a path with a
// query).
var urlKeys = map[string]bool{
	"auth-url": true, "auth-signin": true, "auth-request-redirect": true, "auth-tls-error-page": true,
	"mirror-target": true, "permanent-redirect": true, "temporal-redirect": true, "app-root": true,
	"proxy-redirect-from": true, "proxy-redirect-to": true,
}

// headerValueKeys are the annotations whose value is a header value a
// request must carry.
var headerValueKeys = map[string]bool{"canary-by-header-value": true, "canary-by-header-pattern": true}

// redactAnnotation returns the value of annotation key (without the prefix)
// as the status page shows it, and the parts it hid.
func redactAnnotation(key, value string) (shown string, secrets []string) {
	switch {
	case strings.Contains(key, "snippet"): // ours, and ingress-nginx's auth-snippet, stream-snippet ...
		return redactSnippet(value)
	case urlKeys[key]:
		return redactURL(value)
	case headerValueKeys[key]:
		if value == "" {
			return "", nil
		}
		return hidden, []string{value}
	}
	// Any other value: URLs in it, as in a list of CORS origins.
	if !strings.Contains(value, "://") {
		return value, nil
	}
	words := strings.FieldsFunc(value, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	shown = value
	for _, w := range words {
		if strings.Contains(w, "://") {
			r, s := redactURL(w)
			shown = strings.Replace(shown, w, r, 1)
			secrets = append(secrets, s...)
		}
	}
	return shown, secrets
}

// redactURL hides the user information, the values of the query's
// parameters (a parameter without '=' whole) and the fragment of a URL, or
// of a path with a query. Values that are one nginx variable ($args) are
// kept: they name what the request carries, not a secret.
func redactURL(u string) (string, []string) {
	var secrets []string
	base, frag, hasFrag := strings.Cut(u, "#")
	pre, query, hasQuery := strings.Cut(base, "?")
	if i := strings.Index(pre, "://"); i >= 0 {
		rest := pre[i+3:]
		authority, _, _ := strings.Cut(rest, "/")
		if j := strings.LastIndexByte(authority, '@'); j >= 0 {
			secrets = append(secrets, authority[:j])
			pre = pre[:i+3] + hidden + rest[j:]
		}
	}
	out := pre
	if hasQuery {
		params := strings.Split(query, "&")
		for i, p := range params {
			k, v, hasEq := strings.Cut(p, "=")
			switch {
			case p == "" || isVariable(p):
			case !hasEq:
				params[i] = hidden
				secrets = append(secrets, p)
			case v != "" && !isVariable(v):
				params[i] = k + "=" + hidden
				secrets = append(secrets, v)
			}
		}
		if query != "" {
			secrets = append(secrets, query)
		}
		out += "?" + strings.Join(params, "&")
	}
	if hasFrag {
		if frag != "" && !isVariable(frag) {
			secrets = append(secrets, frag)
			frag = hidden
		}
		out += "#" + frag
	}
	return out, secrets
}

var variableRE = regexp.MustCompile(`^\$[A-Za-z_][A-Za-z0-9_]*$`)

func isVariable(s string) bool { return variableRE.MatchString(s) }

// keptSnippetArg matches the arguments of a snippet directive that carry
// no secret: flags, status codes and times.
var keptSnippetArg = regexp.MustCompile(`^(always|last|break|redirect|permanent|on|off|[0-9]+[a-z]*)$`)

// redactSnippet shows a snippet's directives with their names and first
// arguments (a header name, a regex, a status code) and hides the rest
// (header values, bodies); URLs keep their host. A snippet that does not
// parse is hidden whole.
func redactSnippet(text string) (string, []string) {
	tree, err := confparse.Parse(text)
	if err != nil {
		if strings.TrimSpace(text) == "" {
			return text, nil
		}
		return hidden + " (does not parse)", nil
	}
	var secrets []string
	var b strings.Builder
	var walk func(ds []confparse.Directive)
	walk = func(ds []confparse.Directive) {
		for i, d := range ds {
			if i > 0 {
				b.WriteString(" ")
			}
			b.WriteString(d.Name)
			for j, a := range d.Args {
				b.WriteString(" ")
				shown, s := redactSnippetArg(d.Name, j, a)
				secrets = append(secrets, s...)
				b.WriteString(shown)
			}
			if d.IsBlock {
				b.WriteString(" { ")
				walk(d.Block)
				b.WriteString(" }")
			} else {
				b.WriteString(";")
			}
		}
	}
	walk(tree)
	return b.String(), secrets
}

func redactSnippetArg(directive string, i int, a string) (string, []string) {
	switch {
	case strings.Contains(a, "://"):
		return quoteArg(redactURL(a))
	case i == 0 && strings.HasPrefix(directive, "more_"):
		// more_set_headers "Name: value"
		if name, _, ok := strings.Cut(a, ":"); ok {
			return quoteArg(name+": "+hidden, []string{strings.TrimSpace(a[len(name)+1:])})
		}
		return quoteArg(a, nil)
	case i == 0 || keptSnippetArg.MatchString(a) || isVariable(a):
		return quoteArg(a, nil)
	}
	return hidden, []string{a}
}

// quoteArg quotes a shown snippet argument that holds a space or a quote,
// as nginx would read it.
func quoteArg(a string, secrets []string) (string, []string) {
	if a == "" || strings.ContainsAny(a, " \t\"';{}") {
		return strconv.Quote(a), secrets
	}
	return a, secrets
}

// minBareSecret is the length from which a hidden part is replaced in a
// message wherever it occurs; a shorter one only where it stands quoted
// ("ab"), so that ordinary words are left alone.
const minBareSecret = 4

// scrubber hides, in messages about one Ingress, the annotation values and
// the parts of them that the page hides.
type scrubber struct{ r *strings.Replacer }

// annotation is one annotation of an Ingress, its key without the prefix.
type annotation struct{ key, value string }

// newScrubber builds the scrubber of an Ingress from its annotations.
func newScrubber(anns []annotation) scrubber {
	type pair struct{ from, to string }
	var pairs []pair
	add := func(from, to string) {
		if from == "" || from == to {
			return
		}
		q, tq := strconv.Quote(from), strconv.Quote(to)
		pairs = append(pairs, pair{q, tq}, pair{q[1 : len(q)-1], tq[1 : len(tq)-1]}, pair{from, to})
	}
	for _, a := range anns {
		value := a.value
		shown, secrets := redactAnnotation(a.key, value)
		if shown == value {
			continue
		}
		add(value, shown)
		for _, s := range secrets {
			if len(s) >= minBareSecret {
				add(s, hidden)
			} else if s != "" {
				q := strconv.Quote(s)
				pairs = append(pairs, pair{q, `"` + hidden + `"`})
			}
		}
	}
	if len(pairs) == 0 {
		return scrubber{}
	}
	// The longest first: a Replacer tries its pairs in order at each
	// position, and a value must win over a part of it.
	sort.SliceStable(pairs, func(i, j int) bool { return len(pairs[i].from) > len(pairs[j].from) })
	args := make([]string, 0, 2*len(pairs))
	for _, p := range pairs {
		args = append(args, p.from, p.to)
	}
	return scrubber{strings.NewReplacer(args...)}
}

func (s scrubber) scrub(text string) string {
	if s.r == nil {
		return text
	}
	return s.r.Replace(text)
}
