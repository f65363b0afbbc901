package controller

import (
	"fmt"
	"html/template"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidegate/tidegate/pkg/annotations"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/nginxmetrics"
)

// pageState is what the sync loop records for the status page. The loop
// writes it, HTTP handlers read it: the model through an atomic pointer,
// the rest under a lock.
type pageState struct {
	model atomic.Pointer[model.Model]

	mu         sync.Mutex
	reloadAt   time.Time
	reloadTook time.Duration
	reloadWhy  string
	result     reloadRecord
	push       pushRecord
	// down says why nginx is not running, while tidegate tries to start it
	// again ("" while it runs).
	down      string
	downRetry time.Time
}

// reloadRecord is the outcome of the last reload attempt.
type reloadRecord struct {
	At  time.Time
	Err string // "" when it succeeded
	// RetryAt is when a failed reload is tried again (zero: when the
	// configuration changes).
	RetryAt time.Time
}

// String is the record as /healthz shows it.
func (r reloadRecord) String() string {
	switch {
	case r.At.IsZero():
		return "none yet"
	case r.Err == "":
		return "ok at " + r.At.UTC().Format(time.RFC3339)
	case r.RetryAt.IsZero():
		return "failed at " + r.At.UTC().Format(time.RFC3339) + ": " + r.Err
	}
	return "failed at " + r.At.UTC().Format(time.RFC3339) + ": " + r.Err + "; next try at " + r.RetryAt.UTC().Format(time.RFC3339)
}

type pushRecord struct {
	Kind string
	At   time.Time
	Took time.Duration
	Err  string
}

func (p *pageState) noteReload(took time.Duration, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reloadAt, p.reloadTook, p.reloadWhy = time.Now(), took, why
}

func (p *pageState) noteReloadResult(at time.Time, err error, retry time.Duration) {
	r := reloadRecord{At: at}
	if err != nil {
		r.Err = err.Error()
		if retry > 0 {
			r.RetryAt = at.Add(retry)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.result = r
}

func (p *pageState) noteNginxDown(err error, retry time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down, p.downRetry = "", time.Time{}
	if err != nil {
		p.down, p.downRetry = err.Error(), time.Now().Add(retry)
	}
}

// nginxDown is why nginx is not running and when it is tried again ("" if
// it runs).
func (p *pageState) nginxDown() (string, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down, p.downRetry
}

func (p *pageState) lastReload() reloadRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.result
}

func (p *pageState) notePush(kind string, begin time.Time, err error) {
	r := pushRecord{Kind: kind, At: begin, Took: time.Since(begin)}
	if err != nil {
		r.Err = err.Error()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.push = r
}

// reloadReason says in a few words what structural change made a reload:
// the hosts added, removed or changed, or the global settings.
func reloadReason(prev, next *model.Model) string {
	if prev == nil {
		return "first configuration"
	}
	old := map[string]model.Server{}
	for _, s := range prev.Structure.Servers {
		old[s.Host] = s
	}
	var added, removed, changed []string
	for _, s := range next.Structure.Servers {
		o, ok := old[s.Host]
		switch {
		case !ok:
			added = append(added, hostName(s.Host))
		case !reflect.DeepEqual(o, s):
			changed = append(changed, hostName(s.Host))
		}
		delete(old, s.Host)
	}
	for h := range old {
		removed = append(removed, hostName(h))
	}
	sort.Strings(removed)
	var parts []string
	for _, p := range []struct {
		what  string
		hosts []string
	}{{"added", added}, {"removed", removed}, {"changed", changed}} {
		if len(p.hosts) > 0 {
			parts = append(parts, fmt.Sprintf("hosts %s: %s", p.what, strings.Join(p.hosts, ", ")))
		}
	}
	if !reflect.DeepEqual(prev.Structure.Global, next.Structure.Global) {
		parts = append(parts, "global settings (ConfigMap) changed")
	}
	if prev.Structure.DefaultBackend != next.Structure.DefaultBackend {
		parts = append(parts, "default backend changed")
	}
	if len(parts) == 0 {
		return "structure changed"
	}
	return strings.Join(parts, "; ")
}

func hostName(h string) string {
	if h == "" {
		return "(catch-all)"
	}
	return h
}

// pageData is what the template shows.
type pageData struct {
	Now        time.Time
	Healthy    bool
	Generation string
	NginxDown  string
	DownRetry  time.Time
	Reloads    int
	ReloadAt   time.Time
	ReloadTook time.Duration
	ReloadWhy  string
	Result     reloadRecord
	Push       pushRecord
	Servers    []pageServer
	Backends   []pageBackend
	Problems   []model.Problem
	Compat     []pageCompat
	MetricsErr string
}

type pageServer struct {
	Host      string
	TLS       bool
	Locations []model.Location
}

type pageBackend struct {
	Name      string
	Algorithm string
	Canaries  []model.Canary
	Endpoints []pageEndpoint
}

type pageEndpoint struct {
	Addr     string
	Weight   int
	Draining bool
	// Outcomes are the tries counted since nginx started ("2xx: 10").
	Outcomes string
	Errors   bool
}

type pageCompat struct {
	Ingress  string
	Entries  []annotations.Entry
	Rejected bool
}

// rejectedIngresses are the Ingresses with a problem that is not a warning.
func rejectedIngresses(ps []model.Problem) map[string]bool {
	out := map[string]bool{}
	for _, p := range ps {
		if p.Kind == "Ingress" && !p.Warning {
			out[p.Object] = true
		}
	}
	return out
}

func (c *Controller) pageData() pageData {
	st := c.Status()
	d := pageData{Now: time.Now(), Healthy: c.Healthy(), Generation: st.Generation, Reloads: st.Reloads}
	c.page.mu.Lock()
	d.NginxDown, d.DownRetry = c.page.down, c.page.downRetry
	d.ReloadAt, d.ReloadTook, d.ReloadWhy, d.Result, d.Push = c.page.reloadAt, c.page.reloadTook, c.page.reloadWhy, c.page.result, c.page.push
	c.page.mu.Unlock()
	m := c.page.model.Load()
	scrubbers := c.scrubbers(m)
	for _, p := range st.Problems {
		if p.Kind == "Ingress" {
			p.Reason = scrubbers[p.Object].scrub(p.Reason)
		}
		d.Problems = append(d.Problems, p)
	}
	if m == nil {
		return d
	}
	for _, s := range m.Structure.Servers {
		d.Servers = append(d.Servers, pageServer{Host: hostName(s.Host), TLS: s.TLS, Locations: s.Locations})
	}
	outcomes := map[string]map[string]float64{} // "ns/svc endpoint" -> outcome -> n
	if snap, err := c.requests.Poll(); err != nil {
		d.MetricsErr = err.Error()
	} else {
		for k, v := range snap.Endpoints() {
			key := k[0] + "/" + k[1] + " " + k[2]
			if outcomes[key] == nil {
				outcomes[key] = map[string]float64{}
			}
			outcomes[key][k[3]] += v
		}
	}
	for _, b := range m.Dynamic.Backends {
		pb := pageBackend{Name: b.Name, Algorithm: b.Algorithm, Canaries: b.Canaries}
		ns, svc := nginxmetrics.SplitBackend(b.Name)
		for _, e := range b.Endpoints {
			addr := nginxmetrics.EndpointAddr(e)
			pe := pageEndpoint{Addr: addr, Weight: e.Weight, Draining: e.Draining}
			o := outcomes[ns+"/"+svc+" "+addr]
			var keys []string
			for k := range o {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var parts []string
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%s: %.0f", k, o[k]))
				if k == "error" || k == "timeout" || k == "5xx" {
					pe.Errors = true
				}
			}
			pe.Outcomes = strings.Join(parts, ", ")
			pb.Endpoints = append(pb.Endpoints, pe)
		}
		d.Backends = append(d.Backends, pb)
	}
	rejected := rejectedIngresses(st.Problems)
	names := make([]string, 0, len(m.Compat))
	for k := range m.Compat {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, n := range names {
		entries := make([]annotations.Entry, len(m.Compat[n]))
		for i, e := range m.Compat[n] {
			e.Value, _ = redactAnnotation(e.Key, e.Value)
			e.Detail = scrubbers[n].scrub(e.Detail)
			entries[i] = e
		}
		d.Compat = append(d.Compat, pageCompat{Ingress: n, Entries: entries, Rejected: rejected[n]})
	}
	return d
}

// scrubbers returns, by Ingress, what hides the credentials its annotation
// values may carry (redact.go) in the messages the page shows. They are
// built from the annotations of both the latest snapshot (problems come
// from its model, which may not be applied yet) and the applied model.
func (c *Controller) scrubbers(m *model.Model) map[string]scrubber {
	byIngress := map[string][]annotation{}
	if snap, _ := c.take(); snap != nil {
		for _, ing := range snap.Ingresses {
			for k, v := range ing.Annotations {
				if key, ok := strings.CutPrefix(k, annotations.Prefix); ok {
					name := ing.Namespace + "/" + ing.Name
					byIngress[name] = append(byIngress[name], annotation{key, v})
				}
			}
		}
	}
	if m != nil {
		for name, entries := range m.Compat {
			for _, e := range entries {
				byIngress[name] = append(byIngress[name], annotation{e.Key, e.Value})
			}
		}
	}
	out := make(map[string]scrubber, len(byIngress))
	for name, anns := range byIngress {
		out[name] = newScrubber(anns)
	}
	return out
}

// servePage answers GET / on the status port: a read-only page with what
// an operator looks at first when something is wrong.
func (c *Controller) servePage(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the status page is read-only", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if err := pageTmpl.Execute(w, c.pageData()); err != nil {
		c.log.Error("status page", "err", err)
	}
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}

var pageTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago":  ago,
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"ms":   func(d time.Duration) string { return d.Round(100 * time.Microsecond).String() },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tidegate status</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .5em}h2{font-size:1.1em;margin:1.5em 0 .4em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.3em 0}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}.ok{color:#176d17}.bad{color:#b00020;font-weight:bold}.warn{color:#a15c00}
code{font-family:ui-monospace,monospace}.muted{color:#777}
</style></head><body>
<h1>tidegate status</h1>
<p>{{if .Healthy}}<span class="ok">healthy</span>{{else}}<span class="bad">not healthy</span>{{end}}
 &middot; generation <code>{{.Generation}}</code> &middot; page rendered {{when .Now}}</p>
{{if .NginxDown}}<p class="bad" id="nginx-down">nginx is not running and could not be started again: {{.NginxDown}}; next try at {{when .DownRetry}}</p>{{end}}

<h2>Last reload and push</h2>
<table>
<tr><th>last reload</th><td>{{if .ReloadAt.IsZero}}none since nginx started ({{.Reloads}} reloads){{else}}{{when .ReloadAt}} ({{ago .Now .ReloadAt}}), took {{ms .ReloadTook}}: {{.ReloadWhy}}; {{.Reloads}} reloads in all{{end}}</td></tr>
<tr><th>last reload attempt</th><td id="reload-result">{{if .Result.At.IsZero}}none yet{{else if .Result.Err}}<span class="bad">failed</span> at {{when .Result.At}} ({{ago .Now .Result.At}}): <span class="bad">{{.Result.Err}}</span>; {{if .Result.RetryAt.IsZero}}nginx keeps the last good configuration until the objects change{{else}}nginx keeps the last good configuration; next try at {{when .Result.RetryAt}}{{end}}{{else}}<span class="ok">ok</span> at {{when .Result.At}} ({{ago .Now .Result.At}}){{end}}</td></tr>
<tr><th>last push</th><td>{{if .Push.At.IsZero}}none{{else}}{{.Push.Kind}} at {{when .Push.At}} ({{ago .Now .Push.At}}), took {{ms .Push.Took}}{{if .Push.Err}}: <span class="bad">{{.Push.Err}}</span>{{else}}: <span class="ok">ok</span>{{end}}{{end}}</td></tr>
</table>

<h2>Rejected objects ({{len .Problems}})</h2>
{{if .Problems}}<table id="problems"><tr><th>kind</th><th>object</th><th>field</th><th>reason</th></tr>
{{range .Problems}}<tr class="{{if .Warning}}warn{{else}}bad{{end}}"><td>{{.Kind}}</td><td>{{.Object}}</td><td><code>{{.Field}}</code></td><td>{{if .Warning}}warning: {{end}}{{.Reason}}</td></tr>
{{end}}</table>{{else}}<p class="ok">none</p>{{end}}

<h2>Hosts and paths ({{len .Servers}} hosts)</h2>
<table id="hosts"><tr><th>host</th><th>TLS</th><th>path</th><th>match</th><th>backend</th><th>Ingress</th></tr>
{{range $s := .Servers}}{{range $i, $l := $s.Locations}}<tr>{{if eq $i 0}}<td rowspan="{{len $s.Locations}}"><b>{{$s.Host}}</b></td><td rowspan="{{len $s.Locations}}">{{if $s.TLS}}yes{{else}}no{{end}}</td>{{end}}<td><code>{{$l.Path}}</code></td><td>{{$l.Match}}</td><td>{{if $l.Backend}}<code>{{$l.Backend}}</code>{{else}}<span class="muted">404</span>{{end}}</td><td>{{$l.Ingress}}</td></tr>
{{end}}{{end}}</table>

<h2>Backends ({{len .Backends}})</h2>
{{if .MetricsErr}}<p class="warn">endpoint outcomes unavailable: {{.MetricsErr}}</p>{{end}}
<table id="backends"><tr><th>backend</th><th>algorithm</th><th>endpoint</th><th>state</th><th>weight</th><th>tries since nginx started</th></tr>
{{range $b := .Backends}}{{if $b.Endpoints}}{{range $i, $e := $b.Endpoints}}<tr>{{if eq $i 0}}<td rowspan="{{len $b.Endpoints}}"><code>{{$b.Name}}</code>{{range $b.Canaries}}<br><span class="muted">canary {{.Backend}} weight {{.Weight}}</span>{{end}}</td><td rowspan="{{len $b.Endpoints}}">{{$b.Algorithm}}</td>{{end}}<td><code>{{$e.Addr}}</code></td><td>{{if $e.Draining}}<span class="warn">draining (serving, terminating)</span>{{else}}<span class="ok">ready</span>{{end}}</td><td>{{$e.Weight}}</td><td{{if $e.Errors}} class="bad"{{end}}>{{$e.Outcomes}}</td></tr>
{{end}}{{else}}<tr><td><code>{{$b.Name}}</code></td><td>{{$b.Algorithm}}</td><td colspan="4" class="bad">no endpoints: requests get 503</td></tr>
{{end}}{{end}}</table>

<h2>Annotation compatibility ({{len .Compat}} Ingresses)</h2>
{{range .Compat}}<h3 style="font-size:1em;margin:.8em 0 .2em">Ingress {{.Ingress}}{{if .Rejected}} <span class="bad">REJECTED</span>{{end}}</h3>
{{if .Entries}}<table><tr><th>annotation</th><th>value</th><th>status</th><th>detail</th></tr>
{{range .Entries}}<tr><td><code>{{.Key}}</code></td><td><code>{{.Value}}</code></td><td>{{.Status}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>{{else}}<p class="muted">no annotations</p>{{end}}
{{end}}
</body></html>
`))
