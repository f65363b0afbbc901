// Package nginx renders nginx.conf from the model, checks a candidate with
// `nginx -t`, and runs the nginx process (start, reload, graceful stop).
package nginx

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	nginxfiles "github.com/tidegate/tidegate/nginx"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/nginxvalue"
)

// Settings are the process-level values the template needs besides the model.
type Settings struct {
	// WorkDir holds nginx.conf, logs, temp files, the control socket and the
	// Lua modules.
	WorkDir string
	// HTTPPort and HTTPSPort are the listening ports.
	HTTPPort  int
	HTTPSPort int
	// Workers is the user nginx's workers run as when tidegate runs as
	// root (LookupWorkerUser; never root); nil: they run as tidegate's
	// user, who owns every working file (workdir.go).
	Workers *WorkerUser
	// AccessLog is a file path, or "" for WorkDir/logs/access.log.
	AccessLog string
	// ErrorLog is nginx's error log: a file path, "/dev/stderr" (tidegate
	// passes nginx's stderr on to its own), or "" for
	// WorkDir/logs/error.log.
	ErrorLog string
	// Resolvers are the name servers that resolve auth-url host names
	// (extauth.go), usually SystemResolvers().
	Resolvers []string
	// NoRequestMetrics leaves out the per-request metrics line (nginx.tmpl,
	// log_format tidegate_metrics): --enable-metrics=false, as in
	// ingress-nginx. Each request then formats one log line fewer.
	NoRequestMetrics bool
	// CPUs is what worker-processes "auto" renders as, usually
	// AvailableCPUs(); 0 leaves "auto" to nginx (every online CPU).
	CPUs int
	// OpenFiles is the hard limit of open files tidegate runs under
	// (RaiseOpenFiles): max-worker-open-files 0 renders it less 1024, as
	// ingress-nginx does; 0 (unknown) leaves worker_rlimit_nofile out.
	OpenFiles uint64
	// ServerPerHost renders one server block per host, never a shared one
	// (hostgroups.go): what tidegate did before host groups, kept to
	// measure the two side by side (make bench).
	ServerPerHost bool
}

// SocketPath is where the Lua control socket listens.
// It lives in WorkDir/run, a directory only tidegate's user may enter:
// nginx itself always makes unix sockets world-writable.
func (s Settings) SocketPath() string { return filepath.Join(s.WorkDir, "run", "tidegate.sock") }

// SeedDir is where the controller leaves the pushes init_by_lua stores into
// new, empty shared dicts (dynamic.WriteSeed; Lua finds it from nginx's
// prefix, the working directory).
func (s Settings) SeedDir() string { return filepath.Join(s.WorkDir, "seed") }

// MetricsLogPath is the buffered log of request metrics nginx writes and
// the controller reads (one line per request; see nginx.tmpl).
func (s Settings) MetricsLogPath() string { return filepath.Join(s.WorkDir, "logs", "metrics.log") }

// unavailableSocket is where the server answering 503 for backends without
// endpoints listens, for the scheme the location proxies with ("" for
// plain HTTP). lua/tidegate/balancer.lua derives the same paths from
// nginx's prefix (the working directory). The workers connect to them, so
// they live apart from the control socket (workdir.go).
func (s Settings) unavailableSocket(scheme string) string {
	// short names: a unix socket path has at most 107 bytes
	name := map[string]string{"": "503.sock", "https": "503-tls.sock", "grpc": "503-h2c.sock", "grpcs": "503-h2.sock"}[scheme]
	return "unix:" + filepath.Join(s.WorkDir, "unavailable", name)
}

// accessLogPath is nginx's access log.
func (s Settings) accessLogPath() string {
	if s.AccessLog != "" {
		return s.AccessLog
	}
	return filepath.Join(s.WorkDir, "logs", "access.log")
}

// ConfPath is the live nginx.conf.
func (s Settings) ConfPath() string { return filepath.Join(s.WorkDir, "nginx.conf") }

// ErrorLogPath is where nginx writes its error log.
func (s Settings) ErrorLogPath() string {
	if s.ErrorLog != "" {
		return s.ErrorLog
	}
	return filepath.Join(s.WorkDir, "logs", "error.log")
}

var tmpl = template.Must(template.New("nginx.tmpl").Parse(nginxfiles.Template))

// Rendered is a candidate nginx.conf and its generation: a hash of the
// content that the running nginx reports back once it serves it.
type Rendered struct {
	Conf       []byte
	Generation string
	// WorkerOpenFiles and WorkerConnections are the limits each worker
	// got (worker_rlimit_nofile, 0 when left out; worker_connections).
	WorkerOpenFiles, WorkerConnections int
}

// Render turns a Structure into nginx.conf. Every user-controlled string is
// quoted for its context here; a value that cannot be made safe is an error
// naming the host or path (the model should have refused it already).
func Render(st model.Structure, set Settings) (*Rendered, error) {
	v, err := newView(st, set)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("render nginx.conf: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	gen := hex.EncodeToString(sum[:8])
	conf := bytes.Replace(buf.Bytes(), []byte(generationPlaceholder), []byte(gen), 1)
	return &Rendered{Conf: conf, Generation: gen, WorkerOpenFiles: v.WorkerOpenFiles, WorkerConnections: v.WorkerConnections}, nil
}

const generationPlaceholder = "TIDEGATE_GENERATION_PLACEHOLDER"

// view is what the template sees: only pre-computed, quoted strings.
type view struct {
	User              string // "USER GROUP" of the workers, or ""
	WorkerProcesses   string
	PidFile, ErrorLog string
	AccessLog         string
	LuaPath           string
	Temp              struct{ Body, Proxy, Fastcgi, Uwsgi, Scgi string }
	Socket            string
	MetricsLog        string // "" with Settings.NoRequestMetrics
	// Unavailable are the sockets of the server answering 503 for backends
	// without endpoints: plain, https, grpc (h2c) and grpcs.
	Unavailable         struct{ HTTP, HTTPS, GRPC, GRPCS string }
	DefaultCert         string
	DefaultKey          string
	Generation          string
	HTTPPort, HTTPSPort int
	RedirectPrefix      string
	ProxyBodySize       string
	ProxyConnectTimeout int
	ProxyReadTimeout    int
	ProxySendTimeout    int
	UpstreamKeepalive   int
	// LogFormat is the quoted access log format, LogEscape "escape=json "
	// or ""; AccessLogOff turns the access log off.
	LogFormat    string
	LogEscape    string
	AccessLogOff bool
	// LogPhase renders the Lua log phase (model.Structure.LogPhase).
	LogPhase bool
	// LuaDicts size the shared dicts and the pushes to them, in MiB.
	LuaDicts model.LuaDicts
	// ProxyProtocol is " proxy_protocol" on the public listen lines with
	// use-proxy-protocol, else "".
	ProxyProtocol string
	// HTTP2 is " http2" on the HTTPS listeners unless use-http2 is off.
	HTTP2 string
	// WorkerConnections and WorkerOpenFiles are worker_connections and
	// worker_rlimit_nofile (0: left out), see workerLimits.
	WorkerConnections, WorkerOpenFiles int
	// Blocked refuses the clients of block-cidrs in every public server.
	Blocked bool
	// ServerNamesHashMaxSize and ServerNamesHashBucketSize grow with the
	// number of hosts and the longest name, so nginx never has to warn or
	// fail building its server name hash; MapHash* do the same for the
	// host maps.
	ServerNamesHashMaxSize, ServerNamesHashBucketSize int
	MapHashMaxSize, MapHashBucketSize                 int
	// HostMaps give the hosts of a shared server block their own backend
	// and Ingress label (hostgroups.go).
	HostMaps []hostMap
	// GlobalLines are the ConfigMap's http-level settings.
	GlobalLines               []string
	WorkerShutdownTimeout     int
	UpstreamKeepaliveTimeout  int
	UpstreamKeepaliveRequests int
	Servers                   []serverView
	// Redirects are servers that only redirect to another host.
	Redirects []redirectView
	// authDir holds the htpasswd files (WorkDir/auth).
	authDir string
	// authCacheDir holds the cached auth answers (auth-cache-key).
	authCacheDir string
	// Upstreams are the balancer's upstream blocks: Upstream, then one per
	// set of backend TLS settings (backendtls.go).
	Upstreams []string
	// HTTPLines are http-level lines locations need (rate-limit zones).
	HTTPLines []string
	// ProxyHeaders and GRPCHeaders are the http-level proxy_set_header
	// and grpc_set_header arguments, from proxyHeaders (locations.go),
	// which locations that set their own repeat.
	ProxyHeaders, GRPCHeaders []string
	proxyHeaders              [][2]string
	zoneSeen                  map[string]bool
	// httpHeaders are the http-level add_header lines (snippets.go).
	httpHeaders []string
	// resolvers are the quoted name servers; extras the internal and named
	// locations the current server's locations need (extauth.go,
	// errorpages.go).
	resolvers []string
	extras    []locationView
	extraSeen map[string]bool
}

// redirectView is a server answering every request with a 308 to Target.
type redirectView struct {
	Name, Target string
}

type serverView struct {
	// Names are the quoted server_name arguments, one directive each: the
	// host and its aliases, or every host of a group (hostgroups.go).
	Names []string
	// VHost is the quoted host for metric labels ("" for the catch-all).
	VHost     string
	Default   bool
	Locations []locationView
	// Lines are server-level directives (server-snippet).
	Lines []string
	// host is the model's host; groupable is true for an exact host
	// without aliases, which may share its block (hostgroups.go).
	host      string
	groupable bool
}

type locationView struct {
	Match string // "= ", "~* " or ""
	Path  string // quoted
	// Lines is the body of the location, one directive (or block line) each.
	Lines []string
}

// workers is worker_processes: a number as set, "auto" as the CPUs
// tidegate may use when they are known (AvailableCPUs).
func workers(setting string, cpus int) string {
	if setting == "auto" && cpus > 0 {
		return strconv.Itoa(cpus)
	}
	return setting
}

var workersRe = regexp.MustCompile(`^(auto|[1-9][0-9]{0,3})$`)

func newView(st model.Structure, set Settings) (*view, error) {
	g := st.Global
	if !workersRe.MatchString(g.WorkerProcesses) {
		return nil, fmt.Errorf("worker-processes %q: want auto or a number", g.WorkerProcesses)
	}
	if !nginxvalue.Size(g.ProxyBodySize) {
		return nil, fmt.Errorf("proxy-body-size %q: want an nginx size", g.ProxyBodySize)
	}
	d := g.Settings.LuaDicts
	if d == (model.LuaDicts{}) { // a Structure not built by model (tests)
		d = model.DefaultLuaDicts()
	}
	for name, mib := range map[string]int{"backends": d.Backends, "certificates": d.Certificates} {
		if mib < 1 || mib > model.MaxLuaDict {
			return nil, fmt.Errorf("lua shared dict for %s: %d MiB, want 1-%d", name, mib, model.MaxLuaDict)
		}
	}
	paths := map[string]*string{}
	v := &view{
		Upstreams:       []string{Upstream},
		LuaDicts:        d,
		ProxyProtocol:   map[bool]string{true: " proxy_protocol"}[g.Settings.UseProxyProtocol],
		HTTP2:           map[bool]string{false: " http2"}[g.Settings.NoHTTP2],
		Blocked:         len(g.Settings.BlockCIDRs) > 0,
		WorkerProcesses: workers(g.WorkerProcesses, set.CPUs), HTTPPort: set.HTTPPort, HTTPSPort: set.HTTPSPort,
		ProxyBodySize: g.ProxyBodySize, ProxyConnectTimeout: g.ProxyConnectTimeout,
		ProxyReadTimeout: g.ProxyReadTimeout, ProxySendTimeout: g.ProxySendTimeout,
		UpstreamKeepalive: g.UpstreamKeepalive, Generation: generationPlaceholder,
		LogPhase: st.LogPhase,
	}
	v.WorkerOpenFiles, v.WorkerConnections = workerLimits(g.Settings, set.OpenFiles) // limits.go
	accessLog := set.accessLogPath()
	paths[filepath.Join(set.WorkDir, "nginx.pid")] = &v.PidFile
	paths[set.ErrorLogPath()] = &v.ErrorLog
	tmp := filepath.Join(set.WorkDir, "tmp")
	paths[filepath.Join(tmp, "body")] = &v.Temp.Body
	paths[filepath.Join(tmp, "proxy")] = &v.Temp.Proxy
	paths[filepath.Join(tmp, "fastcgi")] = &v.Temp.Fastcgi
	paths[filepath.Join(tmp, "uwsgi")] = &v.Temp.Uwsgi
	paths[filepath.Join(tmp, "scgi")] = &v.Temp.Scgi
	paths[filepath.Join(set.WorkDir, "lua", "?.lua")+";;"] = &v.LuaPath
	paths["unix:"+set.SocketPath()] = &v.Socket
	if !set.NoRequestMetrics {
		paths[set.MetricsLogPath()] = &v.MetricsLog
	}
	paths[set.unavailableSocket("")] = &v.Unavailable.HTTP
	paths[set.unavailableSocket("https")] = &v.Unavailable.HTTPS
	paths[set.unavailableSocket("grpc")] = &v.Unavailable.GRPC
	paths[set.unavailableSocket("grpcs")] = &v.Unavailable.GRPCS
	paths[filepath.Join(set.WorkDir, "default.crt")] = &v.DefaultCert
	paths[filepath.Join(set.WorkDir, "default.key")] = &v.DefaultKey
	paths[accessLog] = &v.AccessLog
	for p, dst := range paths {
		q, err := Quote(p)
		if err != nil {
			return nil, fmt.Errorf("working directory: %w", err)
		}
		*dst = q
	}
	if w := set.Workers; w != nil {
		for _, name := range []string{w.Name, w.Group} {
			if name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
				return nil, fmt.Errorf("nginx user %s %s: want plain user and group names", w.Name, w.Group)
			}
		}
		v.User = w.Name + " " + w.Group
	}
	if err := v.setAccessLog(g); err != nil {
		return nil, err
	}
	v.authDir = filepath.Join(set.WorkDir, "auth")
	v.authCacheDir = filepath.Join(set.WorkDir, "tmp", "auth-cache")
	resolvers, err := resolverAddrs(set.Resolvers)
	if err != nil {
		return nil, err
	}
	v.resolvers = resolvers
	v.RedirectPrefix = "https://$host"
	if set.HTTPSPort != 443 {
		v.RedirectPrefix += ":" + strconv.Itoa(set.HTTPSPort)
	}
	v.httpHeaders = httpHeaderLines(g.Settings) // snippets.go
	v.proxyHeaders = proxyHeaders(g.Settings)
	for _, h := range v.proxyHeaders {
		v.ProxyHeaders = append(v.ProxyHeaders, h[0]+" "+h[1])
		if h[0] != "Upgrade" && h[0] != "Connection" { // hop-by-hop: not in HTTP/2
			v.GRPCHeaders = append(v.GRPCHeaders, h[0]+" "+h[1])
		}
	}
	v.Servers = make([]serverView, 0, len(st.Servers))
	for _, s := range st.Servers {
		sv, err := v.newServerView(s)
		if err != nil {
			return nil, err
		}
		v.Servers = append(v.Servers, sv)
	}
	for _, r := range st.Redirects {
		name, err := serverName(r.From)
		if err != nil {
			return nil, fmt.Errorf("redirect from %q: %w", r.From, err)
		}
		port := ""
		if set.HTTPPort != 80 || set.HTTPSPort != 443 {
			port = ":$server_port"
		}
		if _, err := QuoteVarFree(r.To); err != nil {
			return nil, fmt.Errorf("redirect to %q: %w", r.To, err)
		}
		target, err := Quote("$scheme://" + r.To + port + "$request_uri")
		if err != nil {
			return nil, fmt.Errorf("redirect to %q: %w", r.To, err)
		}
		v.Redirects = append(v.Redirects, redirectView{Name: name, Target: target})
	}
	v.sortHTTPLines()
	gl, err := globalLines(g.Settings)
	if err != nil {
		return nil, err
	}
	v.GlobalLines = gl
	v.WorkerShutdownTimeout = g.Settings.WorkerShutdownTimeout
	v.UpstreamKeepaliveTimeout = g.Settings.UpstreamKeepaliveTimeout
	v.UpstreamKeepaliveRequests = g.Settings.UpstreamKeepaliveRequests
	longest := 0
	for _, s := range st.Servers {
		longest = max(longest, len(s.Host))
		for _, a := range s.Aliases {
			longest = max(longest, len(a))
		}
	}
	v.ServerNamesHashMaxSize, v.ServerNamesHashBucketSize = hashSizes(len(st.Servers), longest)
	if !set.ServerPerHost {
		if err := v.groupServers(); err != nil {
			return nil, err
		}
	}
	entries := 0
	for _, m := range v.HostMaps {
		entries = max(entries, len(m.Entries))
	}
	v.MapHashMaxSize, v.MapHashBucketSize = hashSizes(entries, longest+1)
	return v, nil
}

// serverName returns the server_name argument for a host. nginx's own
// "*.a.b" matches any depth; the Ingress spec allows exactly one label, so a
// wildcard becomes an anchored regex.
func serverName(host string) (string, error) {
	if host == "" {
		return "_", nil
	}
	if strings.HasPrefix(host, "*.") {
		return Quote(`~^[^.]+` + regexp.QuoteMeta(host[1:]) + `$`)
	}
	return Quote(host)
}

func (v *view) newServerView(s model.Server) (serverView, error) {
	name, err := serverName(s.Host)
	if err != nil {
		return serverView{}, fmt.Errorf("host %q: %w", s.Host, err)
	}
	names := []string{name}
	for _, a := range s.Aliases {
		an, err := serverName(a)
		if err != nil {
			return serverView{}, fmt.Errorf("host %q alias %q: %w", s.Host, a, err)
		}
		names = append(names, an)
	}
	vhost, err := QuoteVarFree(s.Host)
	if err != nil {
		return serverView{}, fmt.Errorf("host %q: %w", s.Host, err)
	}
	sv := serverView{Names: names, VHost: vhost, Default: s.Host == "", host: s.Host,
		groupable: s.Host != "" && !strings.HasPrefix(s.Host, "*.") && len(s.Aliases) == 0}
	v.extras, v.extraSeen = nil, nil
	for _, nl := range nginxLocations(s.Locations) {
		nl.clientAuth = s.ClientAuth
		p := nl.path
		if nl.modifier == "~* " {
			p = "^" + p
		}
		path, err := Quote(p)
		if err != nil {
			return serverView{}, fmt.Errorf("host %q path %q: %w", s.Host, nl.path, err)
		}
		lines, err := locationLines(nl, v)
		if err != nil {
			return serverView{}, fmt.Errorf("host %q path %q: %w", s.Host, nl.path, err)
		}
		sv.Locations = append(sv.Locations, locationView{Match: nl.modifier, Path: path, Lines: lines})
	}
	sv.Locations = append(sv.Locations, v.extras...)
	// add_header inheritance (snippets.go): a level with headers of its
	// own repeats those of the levels above.
	lines, inherited, err := serverHeaderLevel(s, v.httpHeaders)
	if err != nil {
		return serverView{}, fmt.Errorf("host %q: %w", s.Host, err)
	}
	auth, err := clientAuthServerLines(s.ClientAuth, v.authDir) // clientauth.go
	if err != nil {
		return serverView{}, fmt.Errorf("host %q: %w", s.Host, err)
	}
	sv.Lines = append(auth, lines...)
	for i := range sv.Locations {
		sv.Locations[i].Lines = inheritHeaders(sv.Locations[i].Lines, inherited)
	}
	return sv, nil
}

// nginxLocation is one `location` block: a modifier, a path, and the model
// location it serves.
type nginxLocation struct {
	modifier string
	path     string
	// loc points into the model's slice: a Location is big (its
	// annotations), and copying it per nginx location showed in profiles.
	loc *model.Location
	// clientAuth is the host's (clientauth.go), nil without.
	clientAuth *model.ClientAuth
}

// nginxLocations expands model locations into nginx locations. A Prefix path
// "/foo" becomes "= /foo" and "/foo/" so that "/foobar" does not match; an
// Exact path is "= /foo"; ImplementationSpecific is the plain prefix "/foo".
// When two expansions land on the same nginx location, Exact beats Prefix
// and Prefix beats ImplementationSpecific.
func nginxLocations(locs []model.Location) []nginxLocation {
	rank := map[model.MatchKind]int{model.MatchExact: 0, model.MatchPrefix: 1, model.MatchString: 2}
	type key struct{ mod, path string }
	chosen := map[key]nginxLocation{}
	var order []key
	add := func(mod, path string, l *model.Location) {
		k := key{mod, path}
		if old, ok := chosen[k]; ok {
			if rank[l.Match] < rank[old.loc.Match] {
				chosen[k] = nginxLocation{modifier: mod, path: path, loc: l}
			}
			return
		}
		chosen[k] = nginxLocation{modifier: mod, path: path, loc: l}
		order = append(order, k)
	}
	for i := range locs {
		l := &locs[i]
		switch l.Match {
		case model.MatchExact:
			add("= ", l.Path, l)
		case model.MatchPrefix:
			if l.Path == "/" {
				add("", "/", l)
				continue
			}
			add("= ", l.Path, l)
			add("", l.Path+"/", l)
		case model.MatchRegex:
			add("~* ", l.Path, l)
		default:
			add("", l.Path, l)
		}
	}
	var out, regexes []nginxLocation
	for _, k := range order {
		if k.mod == "~* " {
			regexes = append(regexes, chosen[k])
		} else {
			out = append(out, chosen[k])
		}
	}
	// nginx tries regex locations in the order they appear: longest first,
	// as ingress-nginx orders them, so a more specific regex wins.
	sort.SliceStable(regexes, func(i, j int) bool { return len(regexes[i].path) > len(regexes[j].path) })
	return append(out, regexes...)
}
