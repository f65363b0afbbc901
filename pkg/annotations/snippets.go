package annotations

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/tidegate/tidegate/pkg/confparse"
)

// Snippets holds the configuration-snippet (location) and server-snippet
// (server) annotations, parsed with tidegate's nginx tokenizer and reduced
// to directives of a small allow-list with checked arguments. The renderer
// re-emits them argument by argument through its quoting: the user's text
// itself never reaches nginx.conf. Whether snippets apply at all is the
// controller ConfigMap's allow-snippet-annotations (pkg/model/snippets.go).
type Snippets struct {
	Location []Directive
	Server   []Directive
}

// Directive is one accepted snippet directive. Every argument was checked
// for its role (header name, status code, value, regex, flag).
type Directive struct {
	Name string
	Args []string
}

// The snippet annotation keys.
const (
	ConfigurationSnippet = "configuration-snippet"
	ServerSnippet        = "server-snippet"
)

// IsSnippet reports whether key is a snippet annotation tidegate parses.
func IsSnippet(key string) bool { return key == ConfigurationSnippet || key == ServerSnippet }

// maxSnippetDirectives bounds one snippet.
const maxSnippetDirectives = 64

func init() {
	register(ConfigurationSnippet, func(v string, c *Config) (Status, string, error) {
		ds, err := ParseSnippet(v, locationDirectives)
		if err != nil {
			return "", "", err
		}
		c.Snippets.Location = ds
		return Different, snippetDifference(locationDirectives), nil
	})
	register(ServerSnippet, func(v string, c *Config) (Status, string, error) {
		ds, err := ParseSnippet(v, serverDirectives)
		if err != nil {
			return "", "", err
		}
		c.Snippets.Server = ds
		return Different, snippetDifference(serverDirectives), nil
	})
}

func snippetDifference(allowed map[string]func([]string) error) string {
	names := make([]string, 0, len(allowed))
	for n := range allowed {
		names = append(names, n)
	}
	sort.Strings(names)
	return "only these directives are accepted, each argument checked and re-quoted: " + strings.Join(names, ", ") +
		"; values may use only common request variables ($host, $uri, $http_NAME ...)"
}

// snippetText blanks the line breaks of a snippet annotation for the
// generic control-character check: a snippet is many lines by nature, and
// ParseSnippet checks every argument itself.
func snippetText(key, v string) string {
	if !IsSnippet(key) {
		return v
	}
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(v)
}

// locationDirectives and serverDirectives are the allow-lists: a checker
// of the arguments per directive name.
var locationDirectives = map[string]func([]string) error{
	"add_header":        checkAddHeader,
	"proxy_set_header":  checkProxySetHeader,
	"proxy_hide_header": checkOneHeader,
	"proxy_pass_header": checkOneHeader,
	"expires":           checkExpires,
	"return":            checkReturn,
	"rewrite":           checkRewrite,
}

var serverDirectives = map[string]func([]string) error{
	"add_header": checkAddHeader,
	"return":     checkReturn,
	"rewrite":    checkRewrite,
}

// refusedWhy explains the directives people try most.
var refusedWhy = map[string]string{
	"more_set_headers":   "headers-more is not part of nginx-light; use add_header NAME VALUE always;",
	"more_clear_headers": "headers-more is not part of nginx-light; use proxy_hide_header NAME;",
	"include":            "it would read a file into nginx.conf",
	"load_module":        "it loads code into nginx",
	"set":                "variables are tidegate's own",
	"if":                 "blocks are not accepted",
	"location":           "blocks are not accepted",
}

// ParseSnippet tokenizes a snippet and checks every directive against
// allowed. The first refused directive rejects the whole snippet.
func ParseSnippet(text string, allowed map[string]func([]string) error) ([]Directive, error) {
	tree, err := confparse.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("snippet does not parse as nginx directives: %v", err)
	}
	if len(tree) == 0 {
		return nil, fmt.Errorf("snippet holds no directive")
	}
	if len(tree) > maxSnippetDirectives {
		return nil, fmt.Errorf("snippet holds %d directives; at most %d are accepted", len(tree), maxSnippetDirectives)
	}
	out := make([]Directive, 0, len(tree))
	for _, d := range tree {
		where := fmt.Sprintf("directive %q (line %d)", d.Name, d.Line)
		switch {
		case strings.Contains(d.Name, "_by_lua"):
			return nil, fmt.Errorf("%s is refused: Lua code is never accepted in a snippet", where)
		case d.IsBlock:
			return nil, fmt.Errorf("%s is refused: blocks ({ ... }) are not accepted in a snippet", where)
		}
		check, ok := allowed[d.Name]
		if !ok {
			why := refusedWhy[d.Name]
			if why == "" {
				why = "it is not on the allow-list"
			}
			return nil, fmt.Errorf("%s is refused: %s", where, why)
		}
		if err := check(d.Args); err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		out = append(out, Directive{Name: d.Name, Args: append([]string(nil), d.Args...)})
	}
	return out, nil
}

func checkAddHeader(args []string) error {
	if len(args) != 2 && len(args) != 3 {
		return fmt.Errorf("want add_header NAME VALUE [always]")
	}
	if len(args) == 3 && args[2] != "always" {
		return fmt.Errorf("the third argument may only be always, not %q", args[2])
	}
	if err := headerName(args[0]); err != nil {
		return err
	}
	return SnippetValue(args[1])
}

func checkProxySetHeader(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("want proxy_set_header NAME VALUE")
	}
	if err := headerName(args[0]); err != nil {
		return err
	}
	return SnippetValue(args[1])
}

func checkOneHeader(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("want one header name")
	}
	return headerName(args[0])
}

var expiresRe = regexp.MustCompile(`^(-?[0-9]{1,9}(ms|s|m|h|d|w|M|y)?|epoch|max|off)$`)

func checkExpires(args []string) error {
	t := args
	if len(t) == 2 && t[0] == "modified" {
		t = t[1:]
	}
	if len(t) != 1 || !expiresRe.MatchString(t[0]) {
		return fmt.Errorf("want expires [modified] TIME (such as 30d, -1, epoch, max or off)")
	}
	return nil
}

// StatusCode parses a status code of a snippet's return: 200 to 599.
func StatusCode(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 200 || n > 599 || len(s) != 3 {
		return 0, fmt.Errorf("%q is not a status code from 200 to 599", s)
	}
	return n, nil
}

func checkReturn(args []string) error {
	switch len(args) {
	case 1:
		if strings.HasPrefix(args[0], "http://") || strings.HasPrefix(args[0], "https://") {
			return SnippetValue(args[0])
		}
		_, err := StatusCode(args[0])
		return err
	case 2:
		if _, err := StatusCode(args[0]); err != nil {
			return err
		}
		return SnippetValue(args[1])
	}
	return fmt.Errorf("want return CODE [TEXT|URL] or return URL")
}

var rewriteFlags = map[string]bool{"last": true, "break": true, "redirect": true, "permanent": true}

// RewriteRegex returns the regex of a snippet rewrite without its
// optional leading '^', checked like a path regex (ValidRegex).
func RewriteRegex(re string) (string, error) {
	body := strings.TrimPrefix(re, "^")
	if err := ValidRegex(body); err != nil {
		return "", err
	}
	return body, nil
}

func checkRewrite(args []string) error {
	if len(args) != 2 && len(args) != 3 {
		return fmt.Errorf("want rewrite REGEX REPLACEMENT [last|break|redirect|permanent]")
	}
	if len(args) == 3 && !rewriteFlags[args[2]] {
		return fmt.Errorf("flag %q is not last, break, redirect or permanent", args[2])
	}
	body, err := RewriteRegex(args[0])
	if err != nil {
		return err
	}
	if strings.Contains(args[1], "${") {
		return fmt.Errorf("replacement %q: write capture groups as $1 to $9, without braces", args[1])
	}
	if err := SnippetValue(args[1]); err != nil {
		return err
	}
	return CheckRewrite(body, args[1])
}

// snippetVars are the variables a snippet value may read, besides
// $1..$9, $http_NAME, $arg_NAME and $cookie_NAME.
var snippetVars = map[string]bool{
	"scheme": true, "host": true, "uri": true, "request_uri": true, "args": true, "is_args": true,
	"query_string": true, "remote_addr": true, "request_id": true, "request_method": true,
	"server_name": true, "server_port": true, "https": true, "document_uri": true, "status": true,
}

var varPrefixRe = regexp.MustCompile(`^(http|arg|cookie)_[A-Za-z0-9_]+$`)

// SnippetValue accepts a snippet value: printable ASCII, at most 4096
// bytes, whose every '$' starts an allowed variable ($name or ${name}).
func SnippetValue(v string) error {
	if len(v) > maxValueLen {
		return fmt.Errorf("value is longer than %d characters", maxValueLen)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("value %q contains %q; only printable ASCII is accepted", v, rune(c))
		}
	}
	for i := 0; i < len(v); i++ {
		if v[i] != '$' {
			continue
		}
		name, n := varName(v[i+1:])
		if name == "" {
			return fmt.Errorf("value %q: '$' must start a variable such as $host", v)
		}
		if !(len(name) == 1 && name[0] >= '1' && name[0] <= '9') && !snippetVars[name] && !varPrefixRe.MatchString(name) {
			return fmt.Errorf("value %q reads $%s; only $scheme, $host, $uri, $request_uri, $args, $remote_addr, $request_id, $http_NAME, $arg_NAME, $cookie_NAME, $1..$9 and a few more are accepted", v, name)
		}
		i += n
	}
	return nil
}

// varName reads a variable name after '$' the way nginx's script compiler
// does: one digit, or letters, digits and '_', optionally in braces. It
// returns the name and the bytes consumed.
func varName(s string) (string, int) {
	if s == "" {
		return "", 0
	}
	if s[0] == '{' {
		end := strings.IndexByte(s, '}')
		if end < 2 {
			return "", 0
		}
		name := s[1:end]
		for i := 0; i < len(name); i++ {
			if !isVarChar(name[i]) {
				return "", 0
			}
		}
		return name, end + 1
	}
	if s[0] >= '1' && s[0] <= '9' {
		return s[:1], 1
	}
	n := 0
	for n < len(s) && isVarChar(s[n]) {
		n++
	}
	return s[:n], n
}

func isVarChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// CheckSnippetDirective checks one directive again, for the renderer:
// server is true for the server-snippet allow-list.
func CheckSnippetDirective(server bool, d Directive) error {
	allowed := locationDirectives
	if server {
		allowed = serverDirectives
	}
	check, ok := allowed[d.Name]
	if !ok {
		return fmt.Errorf("directive %q is not on the snippet allow-list", d.Name)
	}
	return check(d.Args)
}
