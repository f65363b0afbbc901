package files

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// tree is the manifest directory as last read: the decoded documents of
// every manifest file, by path, and what the last walk of the directory
// found. A change that names a few files (what fsnotify reports for a file
// written, created, removed or renamed) re-reads only those; anything that
// can change which files exist beyond them (a directory, a symlink, a lost
// event) walks the whole directory again. Either way assemble returns what a
// fresh Load of the directory would: at 1,000 Ingresses reading, hashing
// and indexing every file again was most of an endpoint change's latency.
//
// Decoded objects are kept once, in the tree, and shared by the snapshots
// it assembles; the raw bytes are not kept.
type tree struct {
	dir   string
	log   *slog.Logger
	files map[string]*fileEntry // by path relative to the root

	// What the last walk found.
	walkProblems []model.Problem
	// dirs maps each walked directory's real path to its path relative to
	// the root.
	dirs map[string]string
	// special are the real paths of the symlinks and subdirectories inside
	// walked directories: a change to one of them walks again.
	special map[string]bool
	// targets maps the real path of a symlinked manifest's content to the
	// manifests read through it.
	targets map[string][]string
	// watch are the directories a watcher needs, by real path.
	watch map[string]bool

	// changed are the files the last refresh read again, for patch; nil
	// after a rescan.
	changed []fileChange
	// rels are the paths of files, sorted, as the last assemble found
	// them; nil once files were added or removed since.
	rels []string
}

// fileChange is a file a refresh read again: its entry before and after
// (nil when it is gone).
type fileChange struct {
	rel           string
	before, after *fileEntry
}

// fileEntry is one manifest file as last read.
type fileEntry struct {
	abs string
	// readErr is the problem reported for a file that could not be read.
	readErr string
	sum     [sha256.Size]byte
	docs    []docEntry
}

// docEntry is one non-blank document of a file.
type docEntry struct {
	index, line int
	decoded     *decodedDoc
}

// decodedDoc is what one document's bytes decode to. Documents with the same
// bytes (in another file, or the same file read again) share it, so a
// change costs a decode only for the documents that really changed.
type decodedDoc struct {
	sum   [sha256.Size]byte
	items []item
}

// item is one object of a document (several for a List), or why it did not
// decode.
type item struct {
	obj    runtime.Object
	gvk    *schema.GroupVersionKind
	prefix string // "items[i]: " for List items
	err    error
	// stamped is set once a watcher gave this Ingress a creationTimestamp.
	stamped bool
}

func newTree(dir string, log *slog.Logger) *tree {
	return &tree{dir: dir, log: log, files: map[string]*fileEntry{}}
}

// docPool finds already decoded documents by content hash among the entries
// a read replaces; it is built on first use (most reads decode nothing).
type docPool struct {
	from []*fileEntry
	m    map[[sha256.Size]byte]*decodedDoc
}

func (p *docPool) get(sum [sha256.Size]byte) *decodedDoc {
	if p.m == nil {
		p.m = map[[sha256.Size]byte]*decodedDoc{}
		for _, e := range p.from {
			for _, d := range e.docs {
				p.m[d.decoded.sum] = d.decoded
			}
		}
	}
	return p.m[sum]
}

func (p *docPool) put(d *decodedDoc) { p.m[d.sum] = d }

// rescan walks the whole directory and reads every manifest file, decoding
// only documents not seen before.
func (t *tree) rescan() {
	w := walker{visited: map[string]bool{}, watch: map[string]bool{},
		dirs: map[string]string{}, special: map[string]bool{}, targets: map[string][]string{}}
	w.walk(t.dir, "")
	pool := &docPool{}
	for _, e := range t.files {
		pool.from = append(pool.from, e)
	}
	files := make(map[string]*fileEntry, len(w.files))
	for _, f := range w.files {
		e, err := t.read(f.rel, f.abs, pool)
		if err != nil {
			e = &fileEntry{abs: f.abs, readErr: fmt.Sprintf("read: %v", cause(err))}
		}
		files[f.rel] = e
	}
	t.files = files
	t.changed, t.rels = nil, nil
	t.walkProblems, t.dirs, t.special, t.targets, t.watch = w.problems, w.dirs, w.special, w.targets, w.watch
}

// refresh re-reads the files at the given paths (as an fsnotify watcher
// names them: real directory + name). It returns false, having changed
// nothing it cannot redo, when the paths may change more than those files
// (a directory or symlink came, went or changed, or a path is outside the
// walked directories): the caller then walks everything with rescan.
func (t *tree) refresh(paths map[string]bool) bool {
	type change struct {
		abs      string // "" when the file is gone
		viaLink  bool
		previous *fileEntry
	}
	changes := map[string]change{}
	t.changed = []fileChange{}
	for p := range paths {
		if t.watch[p] || t.special[p] {
			return false
		}
		for _, rel := range t.targets[p] {
			e := t.files[rel]
			if e == nil {
				return false
			}
			if real, err := filepath.EvalSymlinks(e.abs); err != nil || real != p {
				return false
			}
			changes[rel] = change{abs: e.abs, viaLink: true, previous: e}
		}
		relDir, walked := t.dirs[filepath.Dir(p)]
		if !walked {
			if len(t.targets[p]) == 0 {
				return false
			}
			continue
		}
		info, err := os.Lstat(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false
		}
		exists := err == nil
		if exists && (info.IsDir() || info.Mode()&fs.ModeSymlink != 0) {
			return false
		}
		name := filepath.Base(p)
		if strings.HasPrefix(name, ".") || !manifestExt(name) {
			// Never read (a walk skips it too).
			continue
		}
		rel := path(relDir, name)
		c := change{previous: t.files[rel]}
		if exists && info.Mode().IsRegular() {
			c.abs = p
		}
		changes[rel] = c
	}
	pool := &docPool{}
	for _, c := range changes {
		if c.previous != nil {
			pool.from = append(pool.from, c.previous)
		}
	}
	for rel, c := range changes {
		if c.abs == "" {
			t.forget(rel, c.previous)
			continue
		}
		e, err := t.read(rel, c.abs, pool)
		switch {
		case err == nil:
		case c.viaLink:
			// The link or what it points to moved: walk again.
			return false
		case errors.Is(err, fs.ErrNotExist):
			// Removed since the event: as a walk would, forget it.
			t.forget(rel, c.previous)
			continue
		default:
			e = &fileEntry{abs: c.abs, readErr: fmt.Sprintf("read: %v", cause(err))}
		}
		if c.previous == nil {
			t.rels = nil
		}
		t.files[rel] = e
		t.changed = append(t.changed, fileChange{rel: rel, before: c.previous, after: e})
	}
	return true
}

// forget drops a file that is gone.
func (t *tree) forget(rel string, previous *fileEntry) {
	delete(t.files, rel)
	if previous != nil {
		t.rels = nil
		t.changed = append(t.changed, fileChange{rel: rel, before: previous})
	}
}

// read reads one file and returns its entry: the previous one when the
// content is the same, else its documents decoded (through pool).
func (t *tree) read(rel, abs string, pool *docPool) (*fileEntry, error) {
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	if old := t.files[rel]; old != nil && old.readErr == "" && old.sum == sum {
		old.abs = abs
		return old, nil
	}
	e := &fileEntry{abs: abs, sum: sum}
	docs := []document{{line: 1, data: data}}
	if !strings.EqualFold(filepath.Ext(rel), ".json") {
		docs = splitYAML(data)
	}
	for i, d := range docs {
		if blank(d.data) {
			continue
		}
		dsum := sha256.Sum256(d.data)
		dd := pool.get(dsum)
		if dd == nil {
			dd = decodeDocument(d.data)
			dd.sum = dsum
			pool.put(dd)
		}
		e.docs = append(e.docs, docEntry{index: i + 1, line: d.line, decoded: dd})
	}
	return e, nil
}

// decodeDocument decodes one YAML document: a List of objects or a single
// object.
func decodeDocument(data []byte) *decodedDoc {
	obj, gvk, err := decode(data)
	if err != nil {
		return &decodedDoc{items: []item{{gvk: gvk, err: err}}}
	}
	list, ok := obj.(*corev1.List)
	if !ok {
		compact(obj)
		return &decodedDoc{items: []item{{obj: obj}}}
	}
	d := &decodedDoc{items: make([]item, 0, len(list.Items))}
	for i, raw := range list.Items {
		itemObj, itemGVK, err := decode(raw.Raw)
		if err != nil {
			d.items = append(d.items, item{gvk: itemGVK, prefix: fmt.Sprintf("items[%d]: ", i), err: err})
			continue
		}
		compact(itemObj)
		d.items = append(d.items, item{obj: itemObj})
	}
	return d
}

// compact trims the spare capacity the decoder leaves in an EndpointSlice's
// endpoint list (it grows by doubling): the slices are most of what the
// source keeps (100,000 endpoints at 10,000 Ingresses), for as long as the
// file is unchanged.
func compact(obj runtime.Object) {
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok || cap(es.Endpoints) == len(es.Endpoints) {
		return
	}
	es.Endpoints = append(make([]discoveryv1.Endpoint, 0, len(es.Endpoints)), es.Endpoints...)
}

// result is one read of the directory: what Load returns plus what Watch
// needs to skip identical reads and to stamp Ingresses.
type result struct {
	snap     *snapshot.Snapshot
	problems []model.Problem
	// digest hashes every file name and content read.
	digest [sha256.Size]byte
	files  int
	// ingressItems finds the item each Ingress of snap comes from.
	ingressItems map[*networkingv1.Ingress]*item
	// seen is where each object of snap was read (patch).
	seen map[seenKey]source
	// patched is set when patch made the result (no Ingress changed).
	patched bool
}

// assemble builds the snapshot of the files as last read. Files are taken
// in path order, so "first wins" for duplicates does not depend on the
// order the file system or the walk produced.
func (t *tree) assemble() result {
	rels := make([]string, 0, len(t.files))
	for rel := range t.files {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	t.rels = rels
	l := &loader{log: t.log, snap: &snapshot.Snapshot{}, seen: make(map[seenKey]source, 3*len(rels))}
	l.problems = append(l.problems, t.walkProblems...)
	items := map[*networkingv1.Ingress]*item{}
	for _, rel := range rels {
		e := t.files[rel]
		if e.readErr != "" {
			l.fileProblem(rel, "", e.readErr)
			continue
		}
		for _, d := range e.docs {
			src := source{file: rel, doc: d.index}
			for i := range d.decoded.items {
				it := &d.decoded.items[i]
				if it.err != nil {
					l.decodeError(src, d.line, it.gvk, it.prefix, it.err)
					continue
				}
				if l.add(src, it.obj) {
					if ing, ok := it.obj.(*networkingv1.Ingress); ok {
						items[ing] = it
					}
				}
			}
		}
	}
	return result{snap: l.snap.Index(), problems: l.problems, digest: t.digest(rels), files: len(rels),
		ingressItems: items, seen: l.seen}
}

// digest hashes the walk problems and the name and content of every file,
// in path order.
func (t *tree) digest(rels []string) (sum [sha256.Size]byte) {
	h := sha256.New()
	// Walk problems (a broken symlink appearing) change the result too.
	for _, p := range t.walkProblems {
		h.Write([]byte(p.String() + "\x00"))
	}
	for _, rel := range rels {
		e := t.files[rel]
		if e.readErr != "" {
			h.Write([]byte(rel + "\x00" + e.readErr + "\x00"))
			continue
		}
		h.Write([]byte(rel + "\x00"))
		h.Write(e.sum[:])
	}
	h.Sum(sum[:0])
	return sum
}

// patch returns what assemble would, given prev, the result of the files
// as they were before the last refresh, when that refresh changed only
// EndpointSlices: files read again whose documents hold the same slices
// (by namespace and name, in the same places) with other content, or
// documents byte-identical to before. Their new objects take the places
// of the old ones in a copy of prev's snapshot, which shares everything
// else, and the problems are prev's (they depend only on what did not
// change). This is the endpoint change, and it then costs the files read,
// not the directory: at 10,000 Ingresses assemble takes tens of
// milliseconds. ok is false for anything else; the caller assembles.
func (t *tree) patch(prev result) (r result, ok bool) {
	if t.changed == nil || t.rels == nil || prev.snap == nil || prev.seen == nil {
		return result{}, false
	}
	var repl []*discoveryv1.EndpointSlice
	for _, c := range t.changed {
		if c.before == c.after {
			continue // the same bytes: read kept the entry
		}
		if c.before == nil || c.after == nil || c.before.readErr != "" || c.after.readErr != "" ||
			len(c.before.docs) != len(c.after.docs) {
			return result{}, false
		}
		for di, ad := range c.after.docs {
			bd := c.before.docs[di]
			if bd.index != ad.index || len(bd.decoded.items) != len(ad.decoded.items) {
				return result{}, false
			}
			same := bd.decoded == ad.decoded
			var first map[string]bool // keys seen in this document
			for ii := range ad.decoded.items {
				bi, ai := &bd.decoded.items[ii], &ad.decoded.items[ii]
				if bi.err != nil || ai.err != nil {
					// its problem names a line, which may have moved
					return result{}, false
				}
				if same {
					continue
				}
				old, ok1 := bi.obj.(*discoveryv1.EndpointSlice)
				es, ok2 := ai.obj.(*discoveryv1.EndpointSlice)
				if !ok1 || !ok2 {
					return result{}, false
				}
				if es.Namespace == "" {
					es.Namespace = DefaultNamespace // as loader.add does
				}
				if es.Name == "" || es.Name != old.Name || es.Namespace != old.Namespace {
					return result{}, false
				}
				key := snapshot.Key(es.Namespace, es.Name)
				if first[key] {
					continue // a duplicate within the document: the first one is used
				}
				if first == nil {
					first = map[string]bool{}
				}
				first[key] = true
				if prev.seen[seenKey{"EndpointSlice", key}] != (source{file: c.rel, doc: ad.index}) {
					continue // a duplicate of one read elsewhere: not in the snapshot
				}
				repl = append(repl, es)
			}
		}
	}
	r = prev
	if r.snap, ok = prev.snap.ReplaceEndpointSlices(repl); !ok {
		return result{}, false
	}
	r.digest = t.digest(t.rels)
	r.patched = true
	return r, true
}
