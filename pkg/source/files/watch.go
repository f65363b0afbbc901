package files

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// Defaults for WatchOptions.
const (
	DefaultDebounce = 50 * time.Millisecond
	DefaultMaxDelay = 500 * time.Millisecond
)

// WatchOptions tunes Watch. The zero value uses the defaults.
type WatchOptions struct {
	// Debounce is how long the directory must stay quiet after an event
	// before it is read again (DefaultDebounce when zero).
	Debounce time.Duration
	// MaxDelay bounds how long a steady stream of events can postpone a
	// read: one happens at least this often while events keep coming
	// (DefaultMaxDelay when zero).
	MaxDelay time.Duration
	// Logger receives reload and watch-error lines (slog.Default when nil).
	Logger *slog.Logger
}

func (o WatchOptions) withDefaults() WatchOptions {
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = DefaultMaxDelay
	}
	if o.MaxDelay < o.Debounce {
		o.MaxDelay = o.Debounce
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Watch loads dir as Load does and calls onChange with the result, then
// again after every change to the directory, debounced. Files written in
// place, created, removed or renamed into dir or any subdirectory (new ones
// included), and the "..data" symlink swap of a mounted ConfigMap or Secret
// all count; a read whose files are byte-identical to the last one delivered
// is dropped, so touching a file costs a read but no onChange. Only the files
// the events name are read again (a change costs the same with 10 files or
// 10,000); an event on a directory or a symlink, or lost events, read the
// whole directory again.
//
// onChange is called from Watch's goroutine, never concurrently; while it
// runs, events queue up. Watch returns nil when ctx is done, or an error if
// dir cannot be watched.
func Watch(ctx context.Context, dir string, opts WatchOptions, onChange func(*snapshot.Snapshot, []model.Problem)) error {
	opts = opts.withDefaults()
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("watch manifests %s: %w", dir, err)
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch manifests %s: %w", dir, err)
	}
	defer fw.Close()
	// Watch the root before the first read so nothing written in between
	// is lost.
	if err := fw.Add(root); err != nil {
		return fmt.Errorf("watch manifests %s: %w", dir, err)
	}
	log := opts.Logger.With("dir", dir)
	w := &watcher{
		root: root, log: log, fw: fw, tree: newTree(dir, log),
		watched: map[string]bool{root: true}, onChange: onChange,
	}
	w.sync(nil, true)

	var (
		timer   = time.NewTimer(time.Hour)
		pending bool
		first   time.Time
		// paths are what the events since the last read named; full is
		// set when events were lost.
		paths = map[string]bool{}
		full  bool
	)
	timer.Stop()
	defer timer.Stop()
	schedule := func() {
		now := time.Now()
		if !pending {
			pending, first = true, now
		}
		// Wait for quiet, but never past first+MaxDelay.
		deadline := now.Add(opts.Debounce)
		if limit := first.Add(opts.MaxDelay); deadline.After(limit) {
			deadline = limit
		}
		timer.Reset(time.Until(deadline))
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return fmt.Errorf("watch manifests %s: event channel closed", dir)
			}
			// A bare chmod (touch, permission fix) cannot change content;
			// everything else may.
			if ev.Op == fsnotify.Chmod {
				continue
			}
			paths[filepath.Clean(ev.Name)] = true
			schedule()
		case err, ok := <-fw.Errors:
			if !ok {
				return fmt.Errorf("watch manifests %s: error channel closed", dir)
			}
			w.log.Warn("manifest watch error", "err", err)
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: read everything again.
				full = true
				schedule()
			}
		case <-timer.C:
			pending = false
			w.sync(paths, full)
			paths, full = map[string]bool{}, false
		}
	}
}

// watcher is the state Watch keeps between reads.
type watcher struct {
	root string
	log  *slog.Logger
	fw   *fsnotify.Watcher
	// tree is the directory as last read.
	tree *tree
	// watched are the directories given to fw, by real path.
	watched map[string]bool
	// prev is the last read, for patch.
	prev      result
	delivered bool
	last      [sha256.Size]byte
	onChange  func(*snapshot.Snapshot, []model.Problem)
	// firstSeen is when each Ingress without a creationTimestamp was first
	// read: manifests rarely carry one, and "the oldest Ingress wins a
	// conflict" must not let a file added later take over a served path.
	firstSeen map[string]metav1.Time
}

// sync re-reads the files the events named, or the whole directory when
// they may have changed more (or full is set), follows its directories with
// fw and calls onChange unless the content is the same as last time.
func (w *watcher) sync(paths map[string]bool, full bool) {
	if full || !w.tree.refresh(paths) {
		w.tree.rescan()
		if w.updateWatches(w.tree.watch) {
			// A directory appeared: read again now that it is watched,
			// so a file written into it between the read and the Add is
			// not lost.
			w.tree.rescan()
			w.updateWatches(w.tree.watch)
		}
	}
	r, ok := w.tree.patch(w.prev)
	if !ok {
		r = w.tree.assemble()
	}
	w.prev = r
	if w.delivered && r.digest == w.last {
		w.log.Debug("manifests unchanged", "files", r.files)
		return
	}
	w.delivered, w.last = true, r.digest
	s := r.snap
	if !r.patched { // a patch changed no Ingress
		w.stampCreation(s, r.ingressItems)
	}
	objects := len(s.Ingresses) + len(s.IngressClasses) + len(s.Services) +
		len(s.EndpointSlices) + len(s.Secrets) + len(s.ConfigMaps)
	w.log.Info("manifests reloaded", "files", r.files, "objects", objects, "problems", len(r.problems))
	w.onChange(s, r.problems)
}

// updateWatches makes fw follow exactly dirs (plus the root) and reports
// whether a directory was added.
func (w *watcher) updateWatches(dirs map[string]bool) bool {
	added := false
	for d := range dirs {
		if w.watched[d] {
			continue
		}
		if err := w.fw.Add(d); err != nil {
			// Gone again already; the event that removed it schedules
			// another read.
			w.log.Debug("cannot watch directory", "path", d, "err", err)
			continue
		}
		w.watched[d] = true
		added = true
	}
	for d := range w.watched {
		if d == w.root || dirs[d] {
			continue
		}
		// The kernel drops the watch of a deleted directory by itself;
		// an error here only says so.
		_ = w.fw.Remove(d)
		delete(w.watched, d)
	}
	return added
}

// stampCreation gives Ingresses without a creationTimestamp the time they
// were first read (stable across reloads), as the API server would have.
// The stamp is written into the decoded object itself, once, before any
// snapshot holding it is handed out (objects are shared between snapshots
// and read by other goroutines afterwards), so unchanged Ingresses cost
// neither a copy nor memory on later reads.
func (w *watcher) stampCreation(s *snapshot.Snapshot, items map[*networkingv1.Ingress]*item) {
	now := metav1.Now()
	seen := make(map[string]metav1.Time, len(w.firstSeen))
	for i, ing := range s.Ingresses {
		it := items[ing]
		switch {
		case it != nil && it.stamped:
			// Stamped by an earlier read.
		case ing.CreationTimestamp.IsZero() && it != nil:
			t, ok := w.firstSeen[snapshot.Key(ing.Namespace, ing.Name)]
			if !ok {
				// Several Ingresses read at once keep their name order.
				t = metav1.NewTime(now.Add(time.Duration(i) * time.Nanosecond))
			}
			// Decoded by this read: no snapshot holds it yet.
			ing.CreationTimestamp = t
			it.stamped = true
		default:
			// The manifest gives one.
			continue
		}
		seen[snapshot.Key(ing.Namespace, ing.Name)] = ing.CreationTimestamp
	}
	w.firstSeen = seen
}
