// Package confparse tokenizes nginx.conf the way nginx does, so tests can
// check that a rendered configuration holds exactly the directives expected:
// a value that escaped its quoting would show up as an extra directive, an
// extra block or a changed argument count.
package confparse

import (
	"fmt"
	"strings"
)

// Directive is one nginx directive with its arguments (unquoted) and, for a
// block directive, its children.
type Directive struct {
	Name  string
	Args  []string
	Block []Directive
	// IsBlock is true for "name args { ... }".
	IsBlock bool
	Line    int
}

// Parse tokenizes conf. The body of *_by_lua_block directives is skipped as
// one opaque argument (lua-nginx-module reads it with its own lexer).
func Parse(conf string) ([]Directive, error) {
	p := &parser{s: conf, line: 1}
	ds, err := p.block(0)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.s) {
		return nil, fmt.Errorf("line %d: unexpected '}'", p.line)
	}
	return ds, nil
}

type parser struct {
	s    string
	pos  int
	line int
}

// block reads directives until '}' (depth > 0) or the end (depth 0).
func (p *parser) block(depth int) ([]Directive, error) {
	var out []Directive
	var words []string
	start := p.line
	for {
		tok, _, kind, err := p.next()
		if err != nil {
			return nil, err
		}
		switch kind {
		case tokEOF:
			if depth > 0 {
				return nil, fmt.Errorf("unexpected end of file, expecting '}'")
			}
			if len(words) > 0 {
				return nil, fmt.Errorf("line %d: unexpected end of file, expecting ';'", p.line)
			}
			return out, nil
		case tokWord:
			if len(words) == 0 {
				start = p.line
			}
			words = append(words, tok)
			// set_by_lua_block names its variable before the block.
			if len(words) == 1 && strings.HasSuffix(tok, "_by_lua_block") && tok != "set_by_lua_block" ||
				len(words) == 2 && words[0] == "set_by_lua_block" {
				body, err := p.luaBlock()
				if err != nil {
					return nil, err
				}
				out = append(out, Directive{Name: words[0], Args: append(words[1:], body), Line: start})
				words = nil
			}
		case tokSemi:
			if len(words) == 0 {
				return nil, fmt.Errorf("line %d: unexpected ';'", p.line)
			}
			out = append(out, Directive{Name: words[0], Args: words[1:], Line: start})
			words = nil
		case tokOpen:
			if len(words) == 0 {
				return nil, fmt.Errorf("line %d: unexpected '{'", p.line)
			}
			children, err := p.block(depth + 1)
			if err != nil {
				return nil, err
			}
			out = append(out, Directive{Name: words[0], Args: words[1:], Block: children, IsBlock: true, Line: start})
			words = nil
		case tokClose:
			if depth == 0 {
				return nil, fmt.Errorf("line %d: unexpected '}'", p.line)
			}
			if len(words) > 0 {
				return nil, fmt.Errorf("line %d: unexpected '}', expecting ';'", p.line)
			}
			return out, nil
		}
	}
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokWord
	tokSemi
	tokOpen
	tokClose
)

// next returns the next token, nginx style: '#' starts a comment outside
// quotes, quotes group, backslash escapes the next character.
func (p *parser) next() (string, bool, tokKind, error) {
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == '\n':
			p.line++
			p.pos++
		case c == ' ' || c == '\t' || c == '\r':
			p.pos++
		case c == '#':
			for p.pos < len(p.s) && p.s[p.pos] != '\n' {
				p.pos++
			}
		case c == ';':
			p.pos++
			return "", false, tokSemi, nil
		case c == '{':
			p.pos++
			return "", false, tokOpen, nil
		case c == '}':
			p.pos++
			return "", false, tokClose, nil
		case c == '"' || c == '\'':
			s, err := p.quoted(c)
			return s, true, tokWord, err
		default:
			var b strings.Builder
			for p.pos < len(p.s) {
				c := p.s[p.pos]
				if c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';' || c == '{' || c == '}' {
					break
				}
				if c == '\\' && p.pos+1 < len(p.s) {
					b.WriteByte(p.s[p.pos+1])
					p.pos += 2
					continue
				}
				// nginx ends a word at a quote too only when it follows
				// whitespace; inside a word a quote is literal.
				b.WriteByte(c)
				p.pos++
			}
			return b.String(), false, tokWord, nil
		}
	}
	return "", false, tokEOF, nil
}

func (p *parser) quoted(q byte) (string, error) {
	startLine := p.line
	p.pos++
	var b strings.Builder
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == '\\' && p.pos+1 < len(p.s):
			n := p.s[p.pos+1]
			switch n {
			case '"', '\'', '\\':
				b.WriteByte(n)
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'n':
				b.WriteByte('\n')
			default:
				b.WriteByte('\\')
				b.WriteByte(n)
			}
			p.pos += 2
		case c == q:
			p.pos++
			if p.pos < len(p.s) {
				if n := p.s[p.pos]; n != ' ' && n != '\t' && n != '\n' && n != '\r' && n != ';' && n != '{' && n != ')' {
					return "", fmt.Errorf("line %d: unexpected %q after a quoted string", p.line, n)
				}
			}
			return b.String(), nil
		default:
			if c == '\n' {
				p.line++
			}
			b.WriteByte(c)
			p.pos++
		}
	}
	return "", fmt.Errorf("line %d: unterminated quoted string", startLine)
}

// luaBlock skips "{ ... }" of a *_by_lua_block, counting braces.
func (p *parser) luaBlock() (string, error) {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
	if p.pos >= len(p.s) || p.s[p.pos] != '{' {
		return "", fmt.Errorf("line %d: a _by_lua_block needs '{'", p.line)
	}
	depth, start := 0, p.pos
	for ; p.pos < len(p.s); p.pos++ {
		switch p.s[p.pos] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				p.pos++
				return p.s[start:p.pos], nil
			}
		case '\n':
			p.line++
		}
	}
	return "", fmt.Errorf("unterminated _by_lua_block")
}

// Shape is the structure of a configuration without argument values: each
// directive's name and argument count, nested. Two renderings that differ
// only in quoted values have the same shape.
func Shape(ds []Directive) string {
	var b strings.Builder
	var walk func([]Directive, int)
	walk = func(ds []Directive, depth int) {
		for _, d := range ds {
			fmt.Fprintf(&b, "%s%s/%d", strings.Repeat(" ", depth), d.Name, len(d.Args))
			if d.IsBlock {
				b.WriteString(" {\n")
				walk(d.Block, depth+1)
				b.WriteString(strings.Repeat(" ", depth) + "}")
			}
			b.WriteByte('\n')
		}
	}
	walk(ds, 0)
	return b.String()
}

// Walk calls f for every directive, depth first.
func Walk(ds []Directive, f func(d Directive)) {
	for _, d := range ds {
		f(d)
		Walk(d.Block, f)
	}
}
