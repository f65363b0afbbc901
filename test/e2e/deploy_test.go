package e2e

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"
)

// manifests are the objects of deploy/ (every file, examples and overlays
// included), read as kubectl would.
type manifests struct {
	services  []*corev1.Service
	workloads []workload
	policies  []*networkingv1.NetworkPolicy
}

// workload is a Deployment or DaemonSet: the labels and ports of its pods.
// A document without pod labels is a patch (deploy/admission's): its ports
// are added to the workload it patches.
type workload struct {
	file, kind, namespace, name string
	labels                      map[string]string
	ports                       []corev1.ContainerPort
}

func (w workload) String() string {
	return w.kind + " " + w.namespace + "/" + w.name + " (" + w.file + ")"
}

func readDeploy(t *testing.T) manifests {
	t.Helper()
	var m manifests
	var patches []workload
	root := filepath.Join("..", "..", "deploy")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var raw map[string]any
			if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return err
			}
			if raw == nil {
				continue
			}
			doc, err := sigsyaml.Marshal(raw)
			if err != nil {
				return err
			}
			ns := func(n string) string {
				if n == "" {
					return "default"
				}
				return n
			}
			switch raw["kind"] {
			case "Service":
				var s corev1.Service
				if err := sigsyaml.UnmarshalStrict(doc, &s); err != nil {
					return err
				}
				s.Namespace = ns(s.Namespace)
				m.services = append(m.services, &s)
			case "NetworkPolicy":
				var p networkingv1.NetworkPolicy
				if err := sigsyaml.UnmarshalStrict(doc, &p); err != nil {
					return err
				}
				p.Namespace = ns(p.Namespace)
				m.policies = append(m.policies, &p)
			case "Deployment", "DaemonSet":
				var obj struct {
					Kind     string
					Metadata struct{ Name, Namespace string }
					Spec     struct{ Template corev1.PodTemplateSpec }
				}
				if err := sigsyaml.Unmarshal(doc, &obj); err != nil {
					return err
				}
				w := workload{file: rel, kind: obj.Kind, namespace: ns(obj.Metadata.Namespace), name: obj.Metadata.Name, labels: obj.Spec.Template.Labels}
				for _, c := range obj.Spec.Template.Spec.Containers {
					w.ports = append(w.ports, c.Ports...)
				}
				if len(w.labels) == 0 {
					patches = append(patches, w)
					continue
				}
				m.workloads = append(m.workloads, w)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range patches {
		found := false
		for i, w := range m.workloads {
			if w.kind == p.kind && w.namespace == p.namespace && w.name == p.name {
				m.workloads[i].ports = append(m.workloads[i].ports, p.ports...)
				found = true
			}
		}
		if !found {
			t.Errorf("%s patches no workload of deploy/", p)
		}
	}
	if len(m.services) == 0 || len(m.workloads) == 0 {
		t.Fatalf("read %d Services and %d workloads from deploy/", len(m.services), len(m.workloads))
	}
	return m
}

// selected returns the workloads of ns whose pods sel matches.
func (m manifests) selected(ns string, sel labels.Selector) []workload {
	var out []workload
	for _, w := range m.workloads {
		if w.namespace == ns && sel.Matches(labels.Set(w.labels)) {
			out = append(out, w)
		}
	}
	return out
}

// TestDeployServicesSelectOneWorkload: every Service of deploy/ with a
// selector selects the pods of exactly one workload. The admission
// Service once selected the default backend's pods as well: the API
// server sent part of the reviews there, where nothing answered on the
// webhook port, and failurePolicy: Ignore let those Ingresses in unchecked.
func TestDeployServicesSelectOneWorkload(t *testing.T) {
	m := readDeploy(t)
	for _, s := range m.services {
		if len(s.Spec.Selector) == 0 {
			continue // endpoints written by hand
		}
		got := m.selected(s.Namespace, labels.SelectorFromSet(s.Spec.Selector))
		if len(got) != 1 {
			t.Errorf("Service %s/%s selects the pods of %d workloads, want 1: %v", s.Namespace, s.Name, len(got), got)
		}
	}
}
