package nginx

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/tidegate/tidegate/pkg/annotations"
	"github.com/tidegate/tidegate/pkg/model"
)

// hstsHeaderLine is the http-level HSTS header (global.go). Every block
// that adds headers of its own repeats it (inheritHeaders).
const hstsHeaderLine = "add_header Strict-Transport-Security $tidegate_hsts always;"

// httpHeaderLines are the add_header lines of the http level.
func httpHeaderLines(s model.Settings) []string {
	if s.HSTS {
		return []string{hstsHeaderLine}
	}
	return nil
}

// bareArg matches snippet arguments that are emitted without quotes:
// nothing in them means anything to nginx's tokenizer.
var bareArg = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// snippetLine re-emits one checked snippet directive: the name comes from
// the allow-list, each argument is checked again and quoted unless it is a
// plain word. Values may read variables; the annotation parser allowed
// only a fixed set of them.
func snippetLine(server bool, d annotations.Directive) (string, error) {
	if err := annotations.CheckSnippetDirective(server, d); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(d.Name)
	for _, a := range d.Args {
		b.WriteByte(' ')
		if bareArg.MatchString(a) {
			b.WriteString(a)
			continue
		}
		q, err := Quote(a)
		if err != nil {
			return "", fmt.Errorf("%s: %w", d.Name, err)
		}
		b.WriteString(q)
	}
	b.WriteByte(';')
	return b.String(), nil
}

// serverSnippetLines renders a server's server-snippet.
func serverSnippetLines(s model.Server) ([]string, error) {
	var out []string
	for _, d := range s.Snippet {
		line, err := snippetLine(true, d)
		if err != nil {
			return nil, fmt.Errorf("server-snippet: %w", err)
		}
		out = append(out, line)
	}
	return out, nil
}

// snippetProxyHeaders are the proxy_set_header directives of a location's
// configuration-snippet, as lines; headerLines merges them with the
// standard proxy headers (nginx drops inherited ones once a location sets
// any). names holds their lower-case header names.
func snippetProxyHeaders(c annotations.Config) (lines []string, names map[string]bool, err error) {
	for _, d := range c.Snippets.Location {
		if d.Name != "proxy_set_header" {
			continue
		}
		line, err := snippetLine(false, d)
		if err != nil {
			return nil, nil, fmt.Errorf("configuration-snippet: %w", err)
		}
		if names == nil {
			names = map[string]bool{}
		}
		names[strings.ToLower(d.Args[0])] = true
		lines = append(lines, line)
	}
	return lines, names, nil
}

// responseHeaderLines adds the custom-headers of a location and the rest of
// its configuration-snippet (proxy_set_header goes through headerLines).
func responseHeaderLines(l *model.Location, add func(string, ...any)) error {
	for _, h := range l.ResponseHeaders {
		if err := annotations.HeaderName(h.Name); err != nil {
			return fmt.Errorf("custom-headers: %w", err)
		}
		name, err := Quote(h.Name)
		if err != nil {
			return fmt.Errorf("custom-headers: %w", err)
		}
		// Values are literal: a '$' is not a variable here.
		value, err := quoteLiteral(h.Value)
		if err != nil {
			return fmt.Errorf("custom-headers %s: %w", h.Name, err)
		}
		add("add_header %s %s always;", name, value)
	}
	for _, d := range l.Config.Snippets.Location {
		if d.Name == "proxy_set_header" {
			continue
		}
		line, err := snippetLine(false, d)
		if err != nil {
			return fmt.Errorf("configuration-snippet: %w", err)
		}
		add("%s", line)
	}
	return nil
}

// inheritHeaders fixes nginx's add_header inheritance for one location
// body: a level that has add_header directives of its own inherits none
// from the level above, so a location (or an if block inside it) that adds
// headers would silently drop the server's and http's (HSTS). Such a
// level gets the inherited lines repeated in front of its own.
func inheritHeaders(lines, inherited []string) []string {
	if len(inherited) == 0 {
		return lines
	}
	type block struct {
		indent  string
		headers bool
	}
	blocks := map[int]*block{}
	var stack []int
	var top []string
	for i, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasSuffix(t, "{"):
			indent := l[:len(l)-len(strings.TrimLeft(l, " "))]
			blocks[i] = &block{indent: indent + "    "}
			stack = append(stack, i)
		case t == "}":
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case strings.HasPrefix(t, "add_header "):
			if len(stack) == 0 {
				top = append(top, t)
			} else {
				blocks[stack[len(stack)-1]].headers = true
			}
		}
	}
	level := inherited
	if len(top) > 0 {
		level = append(append([]string(nil), inherited...), top...)
	}
	out := make([]string, 0, len(lines)+len(inherited))
	depth, emitted := 0, false
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if depth == 0 && !emitted && strings.HasPrefix(t, "add_header ") {
			out = append(out, inherited...)
			emitted = true
		}
		out = append(out, l)
		switch {
		case strings.HasSuffix(t, "{"):
			depth++
			if b := blocks[i]; b.headers {
				for _, h := range level {
					out = append(out, b.indent+h)
				}
			}
		case t == "}":
			depth--
		}
	}
	return out
}

// serverHeaderLevel returns the server-level lines (server-snippet, with
// the http-level headers repeated when it adds headers) and the add_header
// lines the server's locations inherit.
func serverHeaderLevel(s model.Server, httpHeaders []string) (lines, inherited []string, err error) {
	lines, err = serverSnippetLines(s)
	if err != nil {
		return nil, nil, err
	}
	var own []string
	for _, l := range lines {
		if strings.HasPrefix(l, "add_header ") {
			own = append(own, l)
		}
	}
	if len(own) == 0 {
		return lines, httpHeaders, nil
	}
	return append(append([]string(nil), httpHeaders...), lines...), append(append([]string(nil), httpHeaders...), own...), nil
}
