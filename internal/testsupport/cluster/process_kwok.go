package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	nodeheartbeat "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
)

// NodeName is the name of the fake Node of a Full process cluster.
const NodeName = "kwok-node-0"

// kwokNodeAnnotation marks the Nodes that kwok manages.
const kwokNodeAnnotation = "kwok.x-k8s.io/node"

// writeKwokConfig writes kwok's Stage configuration to path: the same
// stages kwokctl uses by default (node initialize and heartbeat with lease,
// pods become ready, complete and are deleted at once), taken from the
// kwok module so they match the kwok binary's version; and a ClusterLogs
// that serves podLog (created empty) as every container's log, followed.
func writeKwokConfig(path, podLog string) error {
	if err := os.WriteFile(podLog, nil, 0o600); err != nil {
		return fmt.Errorf("create pod log %s: %w", podLog, err)
	}
	logs, err := json.Marshal(map[string]any{
		"apiVersion": "kwok.x-k8s.io/v1alpha1",
		"kind":       "ClusterLogs",
		"metadata":   map[string]any{"name": "every-pod"},
		"spec": map[string]any{
			"logs": []any{map[string]any{"logsFile": podLog, "follow": true}},
		},
	})
	if err != nil {
		return err
	}
	docs := []string{
		string(logs),
		nodefast.DefaultNodeInit,
		nodeheartbeat.DefaultNodeHeartbeatWithLease,
		podfast.DefaultPodReady,
		podfast.DefaultPodComplete,
		podfast.DefaultPodDelete,
	}
	for i, d := range docs {
		docs[i] = strings.TrimSpace(d)
	}
	if err := os.WriteFile(path, []byte(strings.Join(docs, "\n---\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("write kwok config %s: %w", path, err)
	}
	return nil
}

// kwokArgs are the kwok flags: manage only Nodes with the fake annotation,
// keep their leases (so the node lifecycle controller sees them alive), and
// serve the node's kubelet API (pod logs) over HTTPS on 127.0.0.1:port, the
// port the node reports, with the API server's serving certificate (the
// API server does not verify a kubelet's certificate without
// --kubelet-certificate-authority).
func kwokArgs(kubeconfig, configPath string, port int, p *pki) []string {
	return []string{
		"--node-port=" + strconv.Itoa(port),
		"--server-address=127.0.0.1:" + strconv.Itoa(port),
		"--tls-cert-file=" + p.servingCert,
		"--tls-private-key-file=" + p.servingKey,
		"--kubeconfig=" + kubeconfig,
		"--config=" + configPath,
		"--manage-nodes-with-annotation-selector=" + kwokNodeAnnotation + "=fake",
		"--node-lease-duration-seconds=40",
		"--node-ip=127.0.0.1",
		"--cidr=10.0.0.0/24",
	}
}

// createFakeNode creates the Node that kwok manages. It carries no taint, so
// ordinary workloads schedule onto it.
func createFakeNode(ctx context.Context, cs kubernetes.Interface) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        NodeName,
			Annotations: map[string]string{kwokNodeAnnotation: "fake"},
			Labels: map[string]string{
				"kubernetes.io/hostname": NodeName,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"type":                   "kwok",
			},
		},
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create Node %s: %w", NodeName, err)
	}
	return nil
}

// nodeReady reports whether the fake Node has condition Ready=True.
func nodeReady(ctx context.Context, cs kubernetes.Interface) (bool, error) {
	n, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("get Node %s: %w", NodeName, err)
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue, nil
		}
	}
	return false, nil
}

// defaultServiceAccount reports whether the controller-manager has created
// the ServiceAccount "default" in namespace "default" (pods are admitted
// only once it exists).
func defaultServiceAccount(ctx context.Context, cs kubernetes.Interface) (bool, error) {
	_, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("get ServiceAccount default/default: %w", err)
	}
	return true, nil
}
