// Package files is the manifest-directory source: it reads Ingress,
// IngressClass, Service, EndpointSlice, Secret and ConfigMap objects from a
// directory of YAML or JSON files and watches it for changes, so tidegate can
// run without a cluster (`tidegate local`, `tidegate render`).
//
// A file or document that cannot be read is reported as a model.Problem and
// skipped; every other object still loads. The same files always give the
// same, indexed snapshot whatever order the file system lists them in.
package files

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/yaml"

	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// ProblemKind is the model.Problem Kind for a file or document that could not
// be read or decoded; Object is then the path relative to the directory.
const ProblemKind = "File"

// DefaultNamespace is given to namespaced objects that name none, as kubectl
// does with the default context.
const DefaultNamespace = "default"

// scheme knows core/v1, networking.k8s.io/v1 and discovery.k8s.io/v1; any
// other group (apps/v1 Deployments living in the same directory) is not
// registered and is skipped.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, networkingv1.AddToScheme, discoveryv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			// Registering the fixed set of upstream types cannot fail
			// short of a broken k8s.io/api; there is no caller to tell.
			panic(fmt.Sprintf("files: register scheme: %v", err))
		}
	}
	return s
}()

// codec decodes YAML (and so JSON) strictly: unknown and duplicate fields are
// errors, as `kubectl apply --validate=strict` would report them.
var codec = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
	kjson.SerializerOptions{Yaml: true, Strict: true})

// jsonCodec is codec for input that is JSON already.
var jsonCodec = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
	kjson.SerializerOptions{Strict: true})

// decode decodes one YAML or JSON object like codec, parsing the YAML once:
// codec parses it twice in strict mode (to JSON, then again to find
// duplicate keys), which was half of what `tidegate local` spent on an
// endpoint change. A document with any mistake in it is decoded again by
// codec, so what it reports is exactly codec's.
func decode(data []byte) (runtime.Object, *schema.GroupVersionKind, error) {
	if j, err := yaml.YAMLToJSONStrict(data); err == nil {
		if obj, gvk, err := jsonCodec.Decode(j, nil, nil); err == nil {
			return obj, gvk, nil
		}
	}
	return codec.Decode(data, nil, nil)
}

// supported are the kinds a snapshot holds, by kind name, with the one
// group/version tidegate reads them in.
var supported = map[string]schema.GroupVersion{
	"Ingress":       networkingv1.SchemeGroupVersion,
	"IngressClass":  networkingv1.SchemeGroupVersion,
	"Service":       corev1.SchemeGroupVersion,
	"EndpointSlice": discoveryv1.SchemeGroupVersion,
	"Secret":        corev1.SchemeGroupVersion,
	"ConfigMap":     corev1.SchemeGroupVersion,
}

// Load reads every *.yaml, *.yml and *.json file in dir and its
// subdirectories and returns the objects tidegate uses, indexed. Names that
// start with "." are skipped, so the "..data" and "..<timestamp>" internals of
// a mounted ConfigMap or Secret are read once, through the top-level
// symlinks. Files that do not decode, unknown fields and duplicate objects are
// returned as problems; the rest still loads.
func Load(dir string) (*snapshot.Snapshot, []model.Problem) {
	t := newTree(dir, slog.Default())
	t.rescan()
	r := t.assemble()
	return r.snap, r.problems
}

// source names where an object was read, for duplicate reports.
type source struct {
	file string
	doc  int
}

func (s source) String() string { return fmt.Sprintf("%s document %d", s.file, s.doc) }

// seenKey is an object's kind and namespace/name, for duplicate reports.
type seenKey struct{ kind, key string }

// loader accumulates the snapshot of one read.
type loader struct {
	log      *slog.Logger
	snap     *snapshot.Snapshot
	problems []model.Problem
	seen     map[seenKey]source
}

func (l *loader) fileProblem(rel, field, reason string) {
	l.problems = append(l.problems, model.Problem{Kind: ProblemKind, Object: rel, Field: field, Reason: reason})
}

// yamlLine finds the line number in a go-yaml error message.
var yamlLine = regexp.MustCompile(`\bline (\d+):`)

// decodeError reports a document (or List item, named by prefix) that did not
// decode, unless it is merely of a kind tidegate does not read.
func (l *loader) decodeError(src source, start int, gvk *schema.GroupVersionKind, prefix string, err error) {
	if runtime.IsNotRegisteredError(err) && gvk != nil {
		if gv, ok := supported[gvk.Kind]; ok && gvk.GroupVersion() != gv {
			l.fileProblem(src.file, fmt.Sprintf("document %d", src.doc),
				fmt.Sprintf("%s%s %s is not supported; use apiVersion %s", prefix, gvk.GroupVersion(), gvk.Kind, gv))
			return
		}
		l.log.Debug("skipping object of a kind tidegate does not read",
			"file", src.file, "document", src.doc, "apiVersion", gvk.GroupVersion().String(), "kind", gvk.Kind)
		return
	}
	var msg string
	switch {
	case runtime.IsMissingKind(err):
		// The upstream message quotes the whole document.
		msg = "kind is missing"
	case runtime.IsMissingVersion(err):
		msg = "apiVersion is missing"
	default:
		msg = err.Error()
	}
	line := start
	if prefix == "" {
		// go-yaml counts lines from the start of the document; report
		// lines of the file, which is what an editor shows. (List items
		// are re-encoded JSON: their lines mean nothing to the user.)
		first := true
		msg = yamlLine.ReplaceAllStringFunc(msg, func(m string) string {
			n, convErr := strconv.Atoi(yamlLine.FindStringSubmatch(m)[1])
			if convErr != nil {
				return m
			}
			abs := start + n - 1
			if first {
				line, first = abs, false
			}
			return "line " + strconv.Itoa(abs) + ":"
		})
	}
	l.fileProblem(src.file, fmt.Sprintf("document %d (line %d)", src.doc, line), prefix+msg)
}

// add files a decoded object under its kind, defaulting the namespace and
// skipping duplicates and kinds a snapshot does not hold; it reports whether
// the object was kept.
func (l *loader) add(src source, obj runtime.Object) bool {
	var (
		kind string
		meta *metav1.ObjectMeta
		keep func()
	)
	switch o := obj.(type) {
	case *networkingv1.Ingress:
		kind, meta, keep = "Ingress", &o.ObjectMeta, func() { l.snap.Ingresses = append(l.snap.Ingresses, o) }
	case *networkingv1.IngressClass:
		kind, meta, keep = "IngressClass", &o.ObjectMeta, func() { l.snap.IngressClasses = append(l.snap.IngressClasses, o) }
	case *corev1.Service:
		kind, meta, keep = "Service", &o.ObjectMeta, func() { l.snap.Services = append(l.snap.Services, o) }
	case *discoveryv1.EndpointSlice:
		kind, meta, keep = "EndpointSlice", &o.ObjectMeta, func() { l.snap.EndpointSlices = append(l.snap.EndpointSlices, o) }
	case *corev1.Secret:
		mergeStringData(o)
		kind, meta, keep = "Secret", &o.ObjectMeta, func() { l.snap.Secrets = append(l.snap.Secrets, o) }
	case *corev1.ConfigMap:
		kind, meta, keep = "ConfigMap", &o.ObjectMeta, func() { l.snap.ConfigMaps = append(l.snap.ConfigMaps, o) }
	default:
		gvk := obj.GetObjectKind().GroupVersionKind()
		l.log.Debug("skipping object of a kind tidegate does not read",
			"file", src.file, "document", src.doc, "apiVersion", gvk.GroupVersion().String(), "kind", gvk.Kind)
		return false
	}
	switch {
	case kind == "IngressClass":
		// Cluster-scoped: the API server drops a namespace given here.
		// (Written only when needed: a cached object may be in use.)
		if meta.Namespace != "" {
			meta.Namespace = ""
		}
	case meta.Namespace == "":
		meta.Namespace = DefaultNamespace
	}
	if meta.Name == "" {
		l.fileProblem(src.file, fmt.Sprintf("document %d", src.doc), kind+" has no metadata.name")
		return false
	}
	key := meta.Name
	if meta.Namespace != "" {
		key = snapshot.Key(meta.Namespace, meta.Name)
	}
	if first, dup := l.seen[seenKey{kind, key}]; dup {
		l.problems = append(l.problems, model.Problem{
			Kind: kind, Object: key,
			Reason: fmt.Sprintf("defined again in %s; the one in %s is used", src, first),
		})
		return false
	}
	l.seen[seenKey{kind, key}] = src
	keep()
	return true
}

// mergeStringData folds stringData into data the way the API server does on
// write (stringData wins), so consumers only ever look at Data.
func mergeStringData(s *corev1.Secret) {
	if len(s.StringData) == 0 {
		return
	}
	if s.Data == nil {
		s.Data = make(map[string][]byte, len(s.StringData))
	}
	for k, v := range s.StringData {
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
}

// document is one YAML document of a file and the file line it starts on.
type document struct {
	line int
	data []byte
}

// splitYAML cuts a YAML stream at "---" separator lines, remembering where
// each document starts so errors can name a line of the file.
func splitYAML(data []byte) []document {
	var (
		docs  []document
		cur   bytes.Buffer
		start = 1
		line  = 0
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	// No line is longer than the file: a buffer of its size (up to the
	// usual 64 KiB, growing from there for longer lines) instead of 64 KiB
	// allocated and cleared for every file read, most of them under 1 KiB.
	sc.Buffer(make([]byte, 0, min(len(data)+1, 64*1024)), len(data)+1)
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if isSeparator(text) {
			docs = append(docs, document{line: start, data: bytes.Clone(cur.Bytes())})
			cur.Reset()
			start = line + 1
			continue
		}
		cur.Write(text)
		cur.WriteByte('\n')
	}
	return append(docs, document{line: start, data: cur.Bytes()})
}

// isSeparator reports a YAML document marker line: "---" alone or followed by
// a space (and possibly a comment).
func isSeparator(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("---")) {
		return false
	}
	rest := line[3:]
	return len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\r'
}

// blank reports a document with nothing but whitespace and comments.
func blank(data []byte) bool {
	for _, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' {
			return false
		}
	}
	return true
}

// file is one manifest file found by the walk.
type file struct {
	rel string // slash-separated, relative to the root
	abs string
}

// walker lists manifest files under a root, following symlinks but skipping
// hidden names and directories it has already seen (symlink loops).
type walker struct {
	files []file
	// visited holds the real path of every directory walked.
	visited map[string]bool
	// watch holds the directories a watcher needs: those walked and those
	// holding the target of a symlinked file.
	watch map[string]bool
	// dirs maps the real path of every directory walked to its path
	// relative to the root.
	dirs map[string]string
	// special holds the real paths (walked directory + name) of the
	// symlinks and subdirectories found.
	special map[string]bool
	// targets maps the real path of a symlinked file's target to the files
	// read through it.
	targets  map[string][]string
	problems []model.Problem
}

// manifestExt reports whether a name looks like a manifest file.
func manifestExt(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

func (w *walker) problem(rel, reason string) {
	if rel == "" {
		rel = "."
	}
	w.problems = append(w.problems, model.Problem{Kind: ProblemKind, Object: rel, Reason: reason})
}

func (w *walker) walk(abs, rel string) {
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		w.problem(rel, fmt.Sprintf("resolve directory: %v", cause(err)))
		return
	}
	if w.visited[real] {
		return
	}
	w.visited[real] = true
	w.watch[real] = true
	if w.dirs != nil {
		w.dirs[real] = rel
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		w.problem(rel, fmt.Sprintf("read directory: %v", cause(err)))
		return
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			// Hidden files, editor swap files and the "..data" /
			// "..<timestamp>" internals of a mounted volume: the
			// latter are read through the top-level symlinks.
			continue
		}
		childAbs, childRel := filepath.Join(abs, name), path(rel, name)
		mode := e.Type()
		if w.special != nil && (mode&fs.ModeSymlink != 0 || mode.IsDir()) {
			w.special[filepath.Join(real, name)] = true
		}
		if mode&fs.ModeSymlink != 0 {
			info, err := os.Stat(childAbs)
			if err != nil {
				if manifestExt(name) {
					w.problem(childRel, fmt.Sprintf("broken symlink: %v", cause(err)))
				}
				continue
			}
			mode = info.Mode().Type()
			if mode.IsRegular() && manifestExt(name) {
				// Watch where the content lives too, so an in-place
				// write to the target is seen.
				if target, err := filepath.EvalSymlinks(childAbs); err == nil {
					w.watch[filepath.Dir(target)] = true
					if w.targets != nil {
						w.targets[target] = append(w.targets[target], childRel)
					}
				}
			}
		}
		switch {
		case mode.IsDir():
			w.walk(childAbs, childRel)
		case mode.IsRegular() && manifestExt(name):
			w.files = append(w.files, file{rel: childRel, abs: childAbs})
		}
	}
}

func path(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// cause drops the path from a *fs.PathError: problems already name the file.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
