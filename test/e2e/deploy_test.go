package e2e

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
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

// TestDeployNetworkPolicy: the NetworkPolicy selects the controller's pods
// only, admits 80 and 443 from everywhere and the status port only from
// the peers it names; deploy/admission admits its webhook port. Named
// ports resolve to the containers' ports.
func TestDeployNetworkPolicy(t *testing.T) {
	m := readDeploy(t)
	var controller *workload
	for i, w := range m.workloads {
		if w.kind == "DaemonSet" && w.name == "tidegate" {
			controller = &m.workloads[i]
		}
	}
	if controller == nil {
		t.Fatal("no DaemonSet tidegate in deploy/")
	}
	portOf := func(p intstr.IntOrString) string {
		if p.Type == intstr.String {
			return p.StrVal
		}
		for _, cp := range controller.ports {
			if cp.ContainerPort == p.IntVal {
				return cp.Name
			}
		}
		return p.String()
	}
	// open[port] is how a port is admitted: "everyone", or the peers.
	open := map[string][]string{}
	for _, p := range m.policies {
		sel, err := metaSelector(p)
		if err != nil {
			t.Fatal(err)
		}
		got := m.selected(p.Namespace, sel)
		if len(got) != 1 || got[0].name != controller.name || got[0].kind != controller.kind {
			t.Errorf("NetworkPolicy %s/%s selects %v, want the controller's pods only", p.Namespace, p.Name, got)
			continue
		}
		for _, rule := range p.Spec.Ingress {
			if len(rule.Ports) == 0 {
				t.Errorf("NetworkPolicy %s: a rule without ports admits every port", p.Name)
			}
			for _, port := range rule.Ports {
				name := portOf(*port.Port)
				if len(rule.From) == 0 {
					open[name] = append(open[name], "everyone")
				}
				for _, f := range rule.From {
					b, _ := sigsyaml.Marshal(f)
					open[name] = append(open[name], strings.TrimSpace(string(b)))
				}
			}
		}
	}
	names := map[string]bool{}
	for _, cp := range controller.ports {
		names[cp.Name] = true
	}
	for port := range open {
		if !names[port] {
			t.Errorf("the NetworkPolicies admit port %q, which no container of the DaemonSet names (it would match nothing)", port)
		}
	}
	for _, port := range []string{"http", "https", "webhook"} {
		if got := open[port]; len(got) != 1 || got[0] != "everyone" {
			t.Errorf("port %s is admitted from %q, want everyone", port, got)
		}
	}
	status := open["status"]
	if len(status) == 0 {
		t.Error("the status port is admitted from nowhere: Prometheus could not scrape it")
	}
	for _, from := range status {
		if from == "everyone" || strings.Contains(from, "0.0.0.0/0") || strings.Contains(from, "namespaceSelector: {}") {
			t.Errorf("the status port is admitted from %s", from)
		}
	}
	var keys []string
	for k, v := range open {
		keys = append(keys, k+" <- "+strings.Join(v, " | "))
	}
	sort.Strings(keys)
	t.Logf("admitted: %s", strings.Join(keys, "; "))
}

func metaSelector(p *networkingv1.NetworkPolicy) (labels.Selector, error) {
	if len(p.Spec.PodSelector.MatchExpressions) > 0 {
		return nil, errors.New("NetworkPolicy " + p.Name + ": matchExpressions are not read by this test")
	}
	return labels.SelectorFromSet(p.Spec.PodSelector.MatchLabels), nil
}
