package nginx

import (
	"strconv"
	"strings"
)

// Host groups: hosts whose server blocks would be identical except for their
// name, their backends and their Ingress labels share one server block.
//
// Why: nginx pays per server block and per location at every start and
// reload, and with Debian's lua-nginx-module 0.10.23 that price is an
// OpenSSL context per server (ssl_certificate_by_lua needs one) plus one per
// location merge — tens of KiB and ~0.1 ms each. A fleet of Ingresses that
// each give their own host a "/" path to their own Service (the common
// shape) then costs one block per host: 13 s of `nginx -t` and 3.4 GiB of
// nginx memory at 10,000 Ingresses. Grouped, it is one block whatever the
// count, and the per-host values come from `map $host` lookups, which nginx
// builds as a hash in milliseconds and evaluates once per request.
//
// Only exact hosts without aliases are grouped: for them $host (lower case,
// port and trailing dot removed by nginx) is exactly the server name that
// matched, so a map keyed by $host gives the same values the host's own
// block would have set. Wildcard hosts, aliases and the default server keep
// their own blocks. Everything else in the block — every location, every
// directive, internal locations — must be byte-identical for two hosts to
// share it, so grouping can never change what a request gets.

// The lines that differ between hosts of one group. locationLines and
// labelLines emit them; a user value never starts a line (snippets are
// re-emitted directive by directive, and `set` is not on their allow-list).
var slotPrefixes = []string{"set $tidegate_backend ", "set $tidegate_ingress "}

// hostMap is an http-level `map $host $Var { key value; ... }`.
type hostMap struct {
	Var     string
	Entries []mapEntry
}

// mapEntry is one quoted key and value of a hostMap.
type mapEntry struct{ Key, Value string }

// mapKeywords are the words the map directive reads as parameters; a host
// spelled like one needs a leading backslash to be a key.
var mapKeywords = map[string]bool{"default": true, "hostnames": true, "include": true, "volatile": true}

// mapKey quotes a host as a map key.
func mapKey(host string) (string, error) {
	if mapKeywords[host] {
		host = `\` + host
	}
	return Quote(host)
}

// shape is a server block with its per-host values cut out: two servers
// with the same key render identically once those values come from maps.
type shape struct {
	key   string
	slots []string // the values cut out, in order of appearance
}

func shapeOf(sv *serverView) shape {
	var b strings.Builder
	var slots []string
	for _, l := range sv.Lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	for i := range sv.Locations {
		loc := &sv.Locations[i]
		b.WriteString("\x00location ")
		b.WriteString(loc.Match)
		b.WriteString(loc.Path)
		b.WriteByte('\n')
		for _, l := range loc.Lines {
			if p, val, ok := cutSlot(l); ok {
				b.WriteString(p)
				b.WriteString("\x01\n")
				slots = append(slots, val)
				continue
			}
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return shape{key: b.String(), slots: slots}
}

// cutSlot splits "set $tidegate_backend VALUE;" into its prefix and VALUE.
func cutSlot(line string) (prefix, value string, ok bool) {
	for _, p := range slotPrefixes {
		if strings.HasPrefix(line, p) && strings.HasSuffix(line, ";") {
			return p, line[len(p) : len(line)-1], true
		}
	}
	return "", "", false
}

// groupServers merges the servers that share a shape (see the top of this
// file). The merged block takes the place of its first host, so the output
// stays sorted and deterministic.
func (v *view) groupServers() error {
	shapes := make([]shape, len(v.Servers))
	members := map[string][]int{}
	for i := range v.Servers {
		sv := &v.Servers[i]
		if !sv.groupable {
			continue
		}
		shapes[i] = shapeOf(sv)
		members[shapes[i].key] = append(members[shapes[i].key], i)
	}
	out := v.Servers[:0:0]
	for i := range v.Servers {
		sv := v.Servers[i]
		ms := members[shapes[i].key]
		if !sv.groupable || len(ms) < 2 {
			out = append(out, sv)
			continue
		}
		if ms[0] != i {
			continue // merged into the group's first server
		}
		g, err := v.merge(sv, ms, shapes)
		if err != nil {
			return err
		}
		out = append(out, g)
	}
	v.Servers = out
	return nil
}

// merge builds the shared block of the servers ms, which all have the shape
// of first. A slot whose value is the same for every host keeps its literal
// line; the others read a map of $host.
func (v *view) merge(first serverView, ms []int, shapes []shape) (serverView, error) {
	g := first
	g.Names = nil
	g.VHost = "$host"
	hosts := make([]string, len(ms))
	for j, i := range ms {
		g.Names = append(g.Names, v.Servers[i].Names...)
		k, err := mapKey(v.Servers[i].host)
		if err != nil {
			return serverView{}, err
		}
		hosts[j] = k
	}
	slot := 0
	g.Locations = make([]locationView, len(first.Locations))
	for li, loc := range first.Locations {
		lines := make([]string, len(loc.Lines))
		for k, l := range loc.Lines {
			p, _, ok := cutSlot(l)
			if !ok {
				lines[k] = l
				continue
			}
			if same(ms, shapes, slot) {
				lines[k] = l
			} else {
				m := hostMap{Var: "tidegate_byhost_" + strconv.Itoa(len(v.HostMaps)), Entries: make([]mapEntry, len(ms))}
				for j, i := range ms {
					m.Entries[j] = mapEntry{Key: hosts[j], Value: shapes[i].slots[slot]}
				}
				v.HostMaps = append(v.HostMaps, m)
				lines[k] = p + "$" + m.Var + ";"
			}
			slot++
		}
		g.Locations[li] = locationView{Match: loc.Match, Path: loc.Path, Lines: lines}
	}
	return g, nil
}

// same reports whether slot n holds one value for every server in ms.
func same(ms []int, shapes []shape, n int) bool {
	for _, i := range ms[1:] {
		if shapes[i].slots[n] != shapes[ms[0]].slots[n] {
			return false
		}
	}
	return true
}

// hashSizes returns a hash's max_size and bucket_size for n keys of which
// the longest has longest bytes: nginx refuses to start when a key does not
// fit a bucket, and searches sizes up to max_size for one without overflow.
func hashSizes(n, longest int) (maxSize, bucketSize int) {
	maxSize = 4096
	for maxSize < 4*n {
		maxSize *= 2
	}
	// a bucket entry is the value pointer, a length and the key, aligned
	bucketSize = 128
	for bucketSize < longest+32 {
		bucketSize *= 2
	}
	return maxSize, bucketSize
}
