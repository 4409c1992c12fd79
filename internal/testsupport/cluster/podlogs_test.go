//go:build !unit

package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestPodLogsThroughKwok checks that a Full process cluster serves pod logs
// through the API server's pods/log: kwok acts as the fake node's kubelet
// and serves PodLogFile, also followed.
func TestPodLogsThroughKwok(t *testing.T) {
	p, err := ProviderFromEnv(testBinDir(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pp, ok := p.(*ProcessProvider)
	if !ok {
		t.Skip("pod logs from a file are a process cluster's")
	}
	pp.Logger = testLogger(t)
	c := StartAll(t, p, "logs")[0].(*ProcessCluster)
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	deployAndWait(t, cs, 1)
	pods, err := cs.CoreV1().Pods("default").List(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("pods of web: %v (%d)", err, len(pods.Items))
	}
	pod := pods.Items[0].Name
	appendLog(t, c.PodLogFile(), "first line")

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err = waitFor(ctx, "pod log", nil, func(ctx context.Context) (bool, error) {
		b, err := cs.CoreV1().Pods("default").GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			t.Logf("logs of %s: %v", pod, err)
			return false, nil
		}
		return strings.Contains(string(b), "first line"), nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Followed: a line appended later arrives on the open stream.
	rc, err := cs.CoreV1().Pods("default").GetLogs(pod, &corev1.PodLogOptions{Follow: true}).Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := make(chan string, 1)
	go func() {
		var all strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := rc.Read(buf)
			all.Write(buf[:n])
			if strings.Contains(all.String(), "second line") || err != nil {
				got <- all.String()
				return
			}
		}
	}()
	appendLog(t, c.PodLogFile(), "second line")
	select {
	case s := <-got:
		if !strings.Contains(s, "second line") {
			t.Fatalf("followed log ended without the appended line: %q", s)
		}
	case <-ctx.Done():
		t.Fatal("the appended line did not arrive on the followed log")
	}
}

// appendLog appends text as one CRI log line to path.
func appendLog(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.WriteString(f, fmt.Sprintf("%s stdout F %s\n", time.Now().UTC().Format(time.RFC3339Nano), text)); err != nil {
		t.Fatal(err)
	}
}
