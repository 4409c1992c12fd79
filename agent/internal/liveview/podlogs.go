package liveview

import (
	"context"
	"fmt"
	"io"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
)

// PodLogs streams a pod's log (the pods/log subresource).
type PodLogs interface {
	Stream(ctx context.Context, namespace, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error)
}

// restPodLogs reads pods/log with a plain REST client of the core group:
// the typed clientset would link every API group into the agent (its
// binary doubled) for this one call.
type restPodLogs struct{ c rest.Interface }

// NewPodLogs returns the PodLogs of the cluster cfg reaches.
func NewPodLogs(cfg *rest.Config) (PodLogs, error) {
	c := rest.CopyConfig(cfg)
	c.APIPath = "/api"
	c.GroupVersion = &schema.GroupVersion{Version: "v1"}
	c.NegotiatedSerializer = serializer.WithoutConversionCodecFactory{CodecFactory: serializer.NewCodecFactory(runtime.NewScheme())}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("pod logs client: %w", err)
	}
	return restPodLogs{rc}, nil
}

func (p restPodLogs) Stream(ctx context.Context, namespace, pod string, o *corev1.PodLogOptions) (io.ReadCloser, error) {
	r := p.c.Get().Namespace(namespace).Resource("pods").Name(pod).SubResource("log")
	if o.Container != "" {
		r = r.Param("container", o.Container)
	}
	if o.Follow {
		r = r.Param("follow", "true")
	}
	if o.TailLines != nil {
		r = r.Param("tailLines", strconv.FormatInt(*o.TailLines, 10))
	}
	if o.SinceSeconds != nil {
		r = r.Param("sinceSeconds", strconv.FormatInt(*o.SinceSeconds, 10))
	}
	return r.Stream(ctx)
}
