package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// The ablation: where tidegate's nginx loses to the static conf. Each step
// is tidegate's own rendered nginx.conf with one more piece of the request
// path taken out, run as a separate nginx beside tidegate's (its own
// prefix, ports and sockets) and measured in the same rounds as tidegate
// and the static reference. The steps are cumulative; the last one differs
// from the static conf only in what tidegate renders around the route
// (variables, maps, headers, log format, the Lua module being loaded).

// ablationStep is one edit of the conf, applied on top of the ones before.
type ablationStep struct {
	Name    string // what the step's nginx runs, for the report
	Removed string // what this step took out, for the report
	edit    func(conf string) (string, error)
}

// ablationRun is one step's measurements.
type ablationRun struct {
	Name, Removed string
	Runs          []wrkResult
	CPU           []float64
}

func ablationSteps(backendPort int) []ablationStep {
	return []ablationStep{
		{"bare balancer", "`tidegate.balancer.balance` (version check, backend lookup, retry budget, peer choice), replaced by the floor's one-line round-robin",
			func(c string) (string, error) {
				c, err := replaceOnce(c, `balancer_by_lua_block { require("tidegate.balancer").balance() }`,
					"balancer_by_lua_block {\n"+floorBalancer+"        }")
				if err != nil {
					return "", err
				}
				return replaceOnce(c, `init_by_lua_block { require("tidegate.init").init() }`,
					`init_by_lua_block { require("tidegate.init").init(); `+floorTable(backendPort)+` }`)
			}},
		{"… and no metrics log", "the per-request metrics line (`access_log … tidegate_metrics`)",
			func(c string) (string, error) {
				return replaceRegexp(c, `(?m)^    access_log \S+ tidegate_metrics .*\n`, "")
			}},
		{"… and a static upstream", "`balancer_by_lua` itself: the same upstream with the route's `server` lines, no Lua",
			func(c string) (string, error) {
				return replaceRegexp(c, `(?s)(    upstream tidegate_upstream \{\n).*?(        keepalive )`, "${1}"+serverLines(liveAddrs, backendPort)+"${2}")
			}},
	}
}

// ablationConf is the nginx of one step: its conf, for the prefix dir,
// listening on port.
type ablationConf struct {
	conf, dir string
	port      int
}

// ablationConfs turns tidegate's rendered conf (from its working
// directory work, listening on httpPort/httpsPort) into one conf per step,
// each for a prefix dir/<i> and ports of its own; it also copies what the
// conf reads from work (Lua modules, the default certificate) into each
// prefix.
func ablationConfs(conf, work, dir string, httpPort, httpsPort int, steps []ablationStep) ([]ablationConf, error) {
	listenHTTP := regexp.MustCompile(fmt.Sprintf(`listen %d\b`, httpPort))
	listenHTTPS := regexp.MustCompile(fmt.Sprintf(`listen %d\b`, httpsPort))
	out := make([]ablationConf, len(steps))
	c := conf
	for i, st := range steps {
		var err error
		if c, err = st.edit(c); err != nil {
			return nil, fmt.Errorf("ablation step %q: %w (did nginx/nginx.tmpl change?)", st.Name, err)
		}
		prefix := filepath.Join(dir, fmt.Sprint(i))
		for _, d := range []string{"logs", "tmp", "run", "unavailable"} {
			if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
				return nil, err
			}
		}
		if err := os.CopyFS(filepath.Join(prefix, "lua"), os.DirFS(filepath.Join(work, "lua"))); err != nil {
			return nil, err
		}
		for _, f := range []string{"default.crt", "default.key"} {
			b, err := os.ReadFile(filepath.Join(work, f))
			if err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(prefix, f), b, 0o600); err != nil {
				return nil, err
			}
		}
		port := freePort()
		s := strings.ReplaceAll(c, work+"/", prefix+"/")
		s = listenHTTP.ReplaceAllString(s, fmt.Sprintf("listen %d", port))
		s = listenHTTPS.ReplaceAllString(s, fmt.Sprintf("listen %d", freePort()))
		out[i] = ablationConf{conf: s, dir: prefix, port: port}
	}
	return out, nil
}

func replaceOnce(s, old, new string) (string, error) {
	if strings.Count(s, old) != 1 {
		return "", fmt.Errorf("%q is not in the conf exactly once", old)
	}
	return strings.Replace(s, old, new, 1), nil
}

func replaceRegexp(s, expr, repl string) (string, error) {
	re := regexp.MustCompile(expr)
	if n := len(re.FindAllStringIndex(s, -1)); n != 1 {
		return "", fmt.Errorf("/%s/ matches the conf %d times, want once", expr, n)
	}
	return re.ReplaceAllString(s, repl), nil
}
