package annotations

import (
	"fmt"
	"regexp/syntax"
	"strings"
)

// Rewrite holds the path annotations.
type Rewrite struct {
	// Target is the rewrite-target replacement; it may use $1..$9 (capture
	// groups of the path regex) and nothing else with '$'.
	Target string
	// UseRegex makes the Ingress's paths regular expressions; ingress-nginx
	// then treats every path of the same host as a regex.
	UseRegex bool
	// ForwardedPrefix is sent as X-Forwarded-Prefix.
	ForwardedPrefix string
}

func init() {
	register("rewrite-target", func(v string, c *Config) (Status, string, error) {
		if err := rewriteTarget(v); err != nil {
			return "", "", err
		}
		c.Rewrite.Target = v
		return Different, regexDifference, nil
	})
	register("use-regex", func(v string, c *Config) (Status, string, error) {
		b, err := boolValue(v)
		if err != nil {
			return "", "", err
		}
		c.Rewrite.UseRegex = c.Rewrite.UseRegex || b
		return Different, regexDifference, nil
	})
	register("x-forwarded-prefix", applied(func(v string, c *Config) error {
		if err := absPath(v); err != nil {
			return err
		}
		c.Rewrite.ForwardedPrefix = v
		return nil
	}))
}

// regexDifference is what a regex user should know.
const regexDifference = "path regexes must fit the RE2 subset of PCRE (no look-arounds or back-references); paths outside it are rejected, not passed to nginx"

// rewriteTarget accepts a path (or absolute URL path part) whose only '$'
// are capture references $1..$9.
func rewriteTarget(v string) error {
	if v == "" {
		return fmt.Errorf("empty rewrite target")
	}
	if !strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "$") {
		return fmt.Errorf("%q must start with '/' or a capture group such as $1", v)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '$':
			if i+1 >= len(v) || v[i+1] < '1' || v[i+1] > '9' {
				return fmt.Errorf("%q: '$' may only start a capture group reference $1 to $9", v)
			}
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~!&'()*+,=:@/%?", c) >= 0:
		default:
			return fmt.Errorf("%q contains %q, which is not allowed in a rewrite target", v, rune(c))
		}
	}
	return nil
}

// MaxRegexLen bounds a path regex.
const MaxRegexLen = 1024

// ValidRegex reports whether a path regex is safe to give to nginx (PCRE):
// printable ASCII without spaces or quotes, and accepted by Go's RE2 parser
// with Perl syntax. RE2 is a subset of PCRE, so whatever passes compiles in
// nginx too; PCRE-only constructs (look-arounds, back-references) are
// refused. RE2's syntax does not rule out catastrophic backtracking in
// PCRE, which backtracks: a repetition inside a repetition ("(a+)+$",
// "(/.*)*x") or over an alternation ("(a|ab)*") is refused (backtrack).
func ValidRegex(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("regex path %q must start with '/'", p)
	}
	if len(p) > MaxRegexLen {
		return fmt.Errorf("regex path is longer than %d characters", MaxRegexLen)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= 0x20 || c >= 0x7f || c == '"' || c == '\'' || c == '`' || c == ';' || c == '#' {
			return fmt.Errorf("regex path %q contains %q, which is not allowed", p, rune(c))
		}
	}
	re, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return fmt.Errorf("regex path %q does not compile: %v (look-arounds and back-references are not supported)", p, err)
	}
	if re.MaxCap() > 9 {
		return fmt.Errorf("regex path %q has more than 9 capture groups", p)
	}
	if err := Backtracking(p); err != nil {
		return fmt.Errorf("regex path %v", err)
	}
	if nonASCII(re) {
		return fmt.Errorf("regex path %q matches characters outside ASCII (\\x{...}, \\p{...}); nginx's PCRE runs without UTF-8 and would refuse it", p)
	}
	return nil
}

// backtrack reports whether re has a repetition of varying count ("*",
// "+", "{2,}", "{1,3}"; not "{2}") inside another, or an alternation inside one: the shapes whose
// failing matches PCRE tries in exponentially many ways. Measured with
// nginx 1.22 and "(a+)+$": a request of 24 'a' and a '!' takes 0.5 s of
// a worker (PCRE's match limit then answers 500), 0.05 s with pcre_jit.
func backtrack(re *syntax.Regexp, inRepeat bool) bool {
	switch re.Op {
	case syntax.OpStar, syntax.OpPlus:
		if inRepeat {
			return true
		}
		inRepeat = true
	case syntax.OpRepeat:
		if re.Max == -1 || re.Max > re.Min {
			if inRepeat {
				return true
			}
			inRepeat = true
		}
	case syntax.OpAlternate:
		if inRepeat {
			return true
		}
	}
	for _, sub := range re.Sub {
		if backtrack(sub, inRepeat) {
			return true
		}
	}
	return false
}

// nonASCII reports whether a parsed regex names a character above 0x7f
// (a literal, a class range or a Unicode class), which nginx's non-UTF-8
// PCRE cannot compile.
func nonASCII(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if r > 0x7f {
				return true
			}
		}
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			// A negated ASCII class spans up to 0x10FFFF: that is fine.
			if lo > 0x7f && hi != 0x10ffff {
				return true
			}
		}
	}
	for _, sub := range re.Sub {
		if nonASCII(sub) {
			return true
		}
	}
	return false
}

// CheckRewrite says whether rewrite-target's capture references ($1..$9)
// exist in the path regex: nginx refuses a rewrite that references more
// groups than its pattern has.
func CheckRewrite(path, target string) error {
	re, err := syntax.Parse(path, syntax.Perl)
	if err != nil {
		return err
	}
	caps := re.MaxCap()
	for i := 0; i+1 < len(target); i++ {
		if target[i] == '$' && target[i+1] >= '1' && target[i+1] <= '9' {
			if n := int(target[i+1] - '0'); n > caps {
				return fmt.Errorf("rewrite-target %q uses $%d but path %q has %d capture group(s)", target, n, path, caps)
			}
		}
	}
	return nil
}
