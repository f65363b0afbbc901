package e2e

import (
	"net/url"
	"os/exec"
	"strings"
	"testing"

	"github.com/tidegate/tidegate/test/harness"
)

const snippetsConfigMap = `apiVersion: v1
kind: ConfigMap
metadata: {name: tidegate, namespace: tidegate}
data:
  allow-snippet-annotations: %q
`

// TestSnippets: with allow-snippet-annotations on, allow-listed snippet
// directives take effect (re-emitted by tidegate, never pasted); a snippet
// with a refused directive rejects its Ingress with the reason, and every
// other host keeps serving. Turned off, snippets are ignored again and
// every Ingress serves without them.
func TestSnippets(t *testing.T) {
	be := harness.StartBackends(t, "web")
	tg := startTidegate(t, map[string]string{
		"all.yaml": strings.Join([]string{harness.ServiceYAML("web", 80), harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
			annotatedIngress("snip", "snip.test", "Prefix", "/",
				"configuration-snippet=add_header X-Snip \"1\";\nproxy_set_header X-From-Snippet yes;\nexpires 1h;"),
			annotatedIngress("srv", "srv.test", "Prefix", "/",
				"server-snippet=add_header X-Server s;\nrewrite ^/old/(.*)$ /new/$1 permanent;"),
			annotatedIngress("lua", "lua.test", "Prefix", "/",
				`configuration-snippet=content_by_lua_block { ngx.say("pwned") }`),
			harness.IngressYAML("plain", "plain.test", "Prefix / web:80"),
		}, "---\n"),
		"cm.yaml": strings.Replace(snippetsConfigMap, "%q", `"true"`, 1),
	})

	t.Run("configuration-snippet: add_header on the answer, proxy_set_header at the backend", func(t *testing.T) {
		st, h, _ := tg.fetch("http", "snip.test", "/x")
		if st != 200 || h.Get("X-Snip") != "1" || h.Get("Cache-Control") != "max-age=3600" {
			t.Errorf("snip.test: %d X-Snip=%q Cache-Control=%q", st, h.Get("X-Snip"), h.Get("Cache-Control"))
		}
		r := tg.Get("snip.test", "/x")
		if r.Headers["X-From-Snippet"] != "yes" {
			t.Errorf("backend did not get X-From-Snippet: %v", r.Headers)
		}
		// Setting one proxy header keeps the standard ones (nginx would
		// drop the inherited ones).
		if r.Host != "snip.test" || r.Headers["X-Forwarded-Host"] != "snip.test" || r.Headers["X-Real-Ip"] == "" {
			t.Errorf("standard proxy headers lost: host %q headers %v", r.Host, r.Headers)
		}
	})
	t.Run("server-snippet: header and rewrite for the whole host", func(t *testing.T) {
		st, h, _ := tg.fetch("http", "srv.test", "/old/page")
		if loc, _ := url.Parse(h.Get("Location")); st != 301 || loc == nil || loc.Path != "/new/page" {
			t.Errorf("rewrite permanent: %d Location %q", st, h.Get("Location"))
		}
		if st, h, _ := tg.fetch("http", "srv.test", "/"); st != 200 || h.Get("X-Server") != "s" {
			t.Errorf("srv.test: %d X-Server=%q", st, h.Get("X-Server"))
		}
	})
	t.Run("a Lua snippet rejects its Ingress with the reason; other hosts serve", func(t *testing.T) {
		if r := tg.Get("lua.test", "/"); r.Status != 404 || strings.Contains(r.Body, "pwned") {
			t.Errorf("lua.test: %d %q, want the catch-all 404", r.Status, r.Body)
		}
		for _, host := range []string{"plain.test", "snip.test", "srv.test"} {
			if r := tg.Get(host, "/"); r.Status != 200 {
				t.Errorf("%s: %d", host, r.Status)
			}
		}
		if conf := harness.ReadFile(t, tg.WorkDir+"/nginx.conf"); strings.Contains(conf, "pwned") || strings.Contains(conf, "content_by_lua_block { ngx.say") {
			t.Error("the refused snippet reached nginx.conf")
		}
		if log := harness.ReadFile(t, tg.LogPath); !strings.Contains(log, `directive \"content_by_lua_block\" (line 1) is refused: Lua code is never accepted`) ||
			!strings.Contains(log, "the whole Ingress is skipped") {
			t.Error("the log must name the refused directive and the Ingress")
		}
		out, err := exec.Command(harness.Bin, "render", "--manifests", tg.Dir, "--report").CombinedOutput()
		if err != nil {
			t.Fatalf("render --report: %v\n%s", err, out)
		}
		if report := string(out); !strings.Contains(report, "Ingress default/lua") || !strings.Contains(report, "rejected                 configuration-snippet") ||
			!strings.Contains(report, "Lua code is never accepted") {
			t.Errorf("compatibility report:\n%s", report)
		}
	})
	t.Run("allow-snippet-annotations off: snippets ignored, every Ingress serves", func(t *testing.T) {
		tg.Write("cm.yaml", strings.Replace(snippetsConfigMap, "%q", `"false"`, 1))
		tg.Eventually("snippets off", func() string {
			if st, h, _ := tg.fetch("http", "snip.test", "/"); st != 200 || h.Get("X-Snip") != "" {
				return "snip.test still has the snippet"
			}
			if r := tg.Get("lua.test", "/"); r.Status != 200 || r.Name != "web" {
				return "lua.test is not served without its snippet"
			}
			return ""
		})
	})
}
