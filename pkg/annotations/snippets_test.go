package annotations

import (
	"strings"
	"testing"
)

func TestParseSnippet(t *testing.T) {
	tests := map[string]struct {
		server  bool
		snippet string
		// want is the accepted directives as "name arg|arg"; err a
		// substring of the rejection.
		want []string
		err  string
	}{
		"headers and proxy headers": {
			snippet: "add_header X-Snip \"1\";\n  proxy_set_header X-From-Snippet yes;\nproxy_hide_header Server;\n",
			want:    []string{"add_header X-Snip|1", "proxy_set_header X-From-Snippet|yes", "proxy_hide_header Server"},
		},
		"add_header always and allowed variables": {
			snippet: `add_header X-Req "$request_id on ${host}$uri" always;`,
			want:    []string{"add_header X-Req|$request_id on ${host}$uri|always"},
		},
		"return and rewrite with flags": {
			snippet: "rewrite ^/old/(.*)$ /new/$1 permanent; return 200 'ok'; expires 30d;",
			want:    []string{"rewrite ^/old/(.*)$|/new/$1|permanent", "return 200|ok", "expires 30d"},
		},
		"comments are dropped": {
			snippet: "# a comment; include x;\nreturn 204;",
			want:    []string{"return 204"},
		},
		"lua is refused":              {snippet: `content_by_lua_block { ngx.say("x") }`, err: `"content_by_lua_block" (line 1) is refused: Lua code`},
		"lua file is refused":         {snippet: `access_by_lua_file /tmp/x.lua;`, err: "Lua code"},
		"include is refused":          {snippet: "include /etc/passwd;", err: `"include" (line 1) is refused: it would read a file`},
		"load_module is refused":      {snippet: "load_module x.so;", err: "loads code"},
		"blocks are refused":          {snippet: "location /x { return 200; }", err: "blocks"},
		"more_set_headers suggests":   {snippet: "more_set_headers 'X: y';", err: "use add_header"},
		"unknown directive":           {snippet: "proxy_pass http://evil;", err: `"proxy_pass" (line 1) is refused: it is not on the allow-list`},
		"bad header name":             {snippet: `add_header "X Y" 1;`, err: "header name"},
		"variable off the list":       {snippet: `add_header X $tidegate_backend;`, err: "reads $tidegate_backend"},
		"secret-ish variable":         {snippet: `proxy_set_header X $ssl_client_cert;`, err: "reads $ssl_client_cert"},
		"lone dollar":                 {snippet: `add_header X "5 $";`, err: "'$' must start a variable"},
		"status out of range":         {snippet: "return 999;", err: "status code from 200 to 599"},
		"status not a number":         {snippet: "return abc;", err: "status code"},
		"bad rewrite flag":            {snippet: "rewrite /a /b loop;", err: "flag"},
		"rewrite regex RE2 only":      {snippet: "rewrite ^/(?=x) /b;", err: "does not compile"},
		"rewrite capture missing":     {snippet: "rewrite ^/a/(.*) /b/$2;", err: "capture group"},
		"newline in a value":          {snippet: "add_header X \"a\\nb\";", err: "only printable ASCII"},
		"too many arguments":          {snippet: "proxy_hide_header A B;", err: "one header name"},
		"does not parse":              {snippet: "add_header X 1", err: "does not parse"},
		"empty":                       {snippet: " # nothing\n", err: "no directive"},
		"server: add_header":          {server: true, snippet: "add_header X-S 1;", want: []string{"add_header X-S|1"}},
		"server: no proxy_set_header": {server: true, snippet: "proxy_set_header X 1;", err: "not on the allow-list"},
		"server: no if":               {server: true, snippet: "if ($host) { return 403; }", err: "blocks"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			allowed := locationDirectives
			if tc.server {
				allowed = serverDirectives
			}
			ds, err := ParseSnippet(tc.snippet, allowed)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range ds {
				got = append(got, d.Name+" "+strings.Join(d.Args, "|"))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSnippetAnnotationKeepsLineBreaks(t *testing.T) {
	cfg, report := Parse(map[string]string{Prefix + ConfigurationSnippet: "add_header X-A 1;\nadd_header X-B 2;\n"})
	if len(report) != 1 || report[0].Status != Different || len(cfg.Snippets.Location) != 2 {
		t.Fatalf("report %+v, snippets %+v", report, cfg.Snippets)
	}
}

func TestCustomHeadersAnnotation(t *testing.T) {
	for v, ok := range map[string]bool{"shop/headers": true, "headers": true, "Shop/x": false, "a/b/c": false, "x; y": false, "": false} {
		cfg, report := Parse(map[string]string{Prefix + "custom-headers": v})
		if got := report[0].Status != Rejected; got != ok {
			t.Errorf("custom-headers %q: %s (%s), want ok=%v", v, report[0].Status, report[0].Detail, ok)
		}
		if ok && cfg.Headers.Name == "" {
			t.Errorf("custom-headers %q: no ConfigMap recorded", v)
		}
	}
}
