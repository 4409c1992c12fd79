package liveview

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// defaultWindow is the credit of a LOGS request that names none.
const defaultWindow = 64 << 10

// streamLogs answers LOGS: the log of a Pod of the tree (or of the newest
// running Pod that a workload of the tree owns, as kubectl logs picks one)
// through the API server's pods/log, in frames within the hub's credit and
// the agent's log rate.
func (s *Server) streamLogs(ctx context.Context, req *apiv1alpha1.LiveRequest, r *request, send Send) (*apiv1alpha1.LiveResponse, error) {
	t, n, err := s.lookup(ctx, req.GetApp(), req.GetObject())
	if err != nil {
		return nil, err
	}
	pod := n
	if !isPod(n.ref) {
		pod = newestPod(t, t.descendants(n))
		if pod == nil {
			return nil, notFound("%s owns no Pod", describe(n.ref))
		}
	}
	opts := req.GetLogs()
	container := opts.GetContainer()
	if cs := containers(pod.obj); container == "" && len(cs) > 0 {
		container = cs[0]
	}
	plo := &corev1.PodLogOptions{Container: container, Follow: opts.GetFollow()}
	if n := opts.GetTailLines(); n > 0 {
		plo.TailLines = &n
	}
	if n := opts.GetSinceSeconds(); n > 0 {
		plo.SinceSeconds = &n
	}
	rc, err := s.podLogs.Stream(ctx, pod.obj.GetNamespace(), pod.obj.GetName(), plo)
	if err != nil {
		return nil, fmt.Errorf("logs of pod %s/%s container %q: %w", pod.obj.GetNamespace(), pod.obj.GetName(), container, err)
	}
	defer rc.Close()

	credit := req.GetCreditBytes()
	if credit <= 0 {
		credit = defaultWindow
	}
	buf := make([]byte, min(int64(s.opts.FrameBytes), max(credit, MinFrameCost)))
	first := true
	for {
		nr, rerr := rc.Read(buf)
		if nr > 0 {
			cost := int64(max(nr, MinFrameCost))
			for credit < cost {
				select {
				case c := <-r.credit:
					credit += c
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			credit -= cost
			if err := s.bps.WaitN(ctx, nr); err != nil {
				return nil, err
			}
			f := &apiv1alpha1.LiveResponse{Id: req.GetId(), LogData: append([]byte(nil), buf[:nr]...)}
			if first {
				f.Pod, f.Container, first = pod.obj.GetName(), container, false
			}
			if err := send(ctx, f); err != nil {
				return nil, err
			}
		}
		if errors.Is(rerr, io.EOF) {
			res := &apiv1alpha1.LiveResponse{}
			if first {
				res.Pod, res.Container = pod.obj.GetName(), container
			}
			return res, nil
		}
		if rerr != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("logs of pod %s/%s: %w", pod.obj.GetNamespace(), pod.obj.GetName(), rerr)
		}
	}
}

func isPod(ref *apiv1alpha1.ObjectRef) bool { return ref.GetGroup() == "" && ref.GetKind() == "Pod" }

// newestPod is the newest running Pod among nodes, else the newest Pod.
func newestPod(_ *appTree, nodes []*node) *node {
	var pods []*node
	for _, n := range nodes {
		if isPod(n.ref) && n.obj != nil {
			pods = append(pods, n)
		}
	}
	if len(pods) == 0 {
		return nil
	}
	running := func(o *unstructured.Unstructured) bool {
		p, _, _ := unstructured.NestedString(o.Object, "status", "phase")
		return p == string(corev1.PodRunning)
	}
	sort.SliceStable(pods, func(i, j int) bool {
		ri, rj := running(pods[i].obj), running(pods[j].obj)
		if ri != rj {
			return ri
		}
		ti, tj := pods[i].obj.GetCreationTimestamp(), pods[j].obj.GetCreationTimestamp()
		return tj.Before(&ti)
	})
	return pods[0]
}
