package loopnode

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidegate/tidegate/pkg/echo"
	"github.com/tidegate/tidegate/test/kubeapi"
	"github.com/tidegate/tidegate/test/netns"
)

// TestPodLifecycle: a Pod created by hand is bound, served on its own
// address and reported Ready; deleted, it serves through its preStop
// sleep, then goes; killed, its server stops at once.
func TestPodLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a kube-apiserver and root")
	}
	// No controller-manager: no "default" ServiceAccount to mount.
	srv := kubeapi.StartWith(t, kubeapi.Options{ExtraAPIServerFlags: []string{"--disable-admission-plugins=ServiceAccount"}})
	ns := netns.Acquire(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	node, err := Start(ctx, Options{Client: srv.Client, NS: ns, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Stop)
	pods := srv.Client.CoreV1().Pods("default")
	create := func(name string, drain int64) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "echo", Image: "echo",
				Ports:     []corev1.ContainerPort{{ContainerPort: 9090}},
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: drain}}}}}}}
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ready := func(name string) *corev1.Pod {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			p, err := pods.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					return p
				}
			}
		}
		t.Fatalf("pod %s not Ready after 20s", name)
		return nil
	}
	get := func(ip string) (string, error) {
		resp, err := http.Get("http://" + ip + ":9090/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r echo.Reply
		return r.Name, json.Unmarshal(b, &r)
	}

	create("a", 1)
	a := ready("a")
	if a.Spec.NodeName != "loopnode" || a.Status.PodIP == "" || a.Status.Phase != corev1.PodRunning {
		t.Fatalf("pod a: node %q ip %q phase %s", a.Spec.NodeName, a.Status.PodIP, a.Status.Phase)
	}
	if name, err := get(a.Status.PodIP); err != nil || name != "a" {
		t.Fatalf("GET pod a at %s: %q %v", a.Status.PodIP, name, err)
	}

	// Deleted: still serving during the 1s preStop sleep, then gone.
	begin := time.Now()
	if err := pods.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if name, err := get(a.Status.PodIP); err != nil || name != "a" {
		t.Errorf("during the preStop sleep: %q %v, want still served", name, err)
	}
	for {
		if _, err := pods.Get(ctx, "a", metav1.GetOptions{}); apierrors.IsNotFound(err) {
			break
		}
		if time.Since(begin) > 15*time.Second {
			t.Fatal("pod a still there 15s after its deletion")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if took := time.Since(begin); took < time.Second {
		t.Errorf("pod a removed %s after deletion, before its 1s preStop sleep", took)
	}
	if _, err := get(a.Status.PodIP); err == nil {
		t.Error("pod a's server still answers after the pod was removed")
	}

	// Killed: the server stops at once, the Pod stays Ready a moment.
	create("b", 0)
	b := ready("b")
	if name, err := get(b.Status.PodIP); err != nil || name != "b" {
		t.Fatalf("GET pod b: %q %v", name, err)
	}
	if err := node.Kill("default", "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := get(b.Status.PodIP); err == nil {
		t.Error("pod b's server answers after Kill")
	}
	ready("b") // still Ready in the API

	stats := node.Stats("default")
	if len(stats) != 2 || stats[0].Requests != 2 || stats[1].Requests != 1 || stats[1].State != "killed" {
		t.Errorf("stats = %+v, want a with 2 requests, b with 1 and killed", stats)
	}
}
