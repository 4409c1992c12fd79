package api

import (
	"encoding/json"
	"time"
)

// ObjectRef names a Kubernetes object of an app's live tree.
type ObjectRef struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version,omitempty"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// ResourceNode is one live object of an app's resource tree: an object of
// the app (InApp) or one that an object of the tree owns (Parents are the
// owners' UIDs).
type ResourceNode struct {
	ObjectRef
	UID        string     `json:"uid,omitempty"`
	Parents    []string   `json:"parents,omitempty"`
	Health     string     `json:"health"`
	Message    string     `json:"message,omitempty"`
	InApp      bool       `json:"inApp"`
	Created    *time.Time `json:"created,omitempty"`
	Containers []string   `json:"containers,omitempty"`
}

// ResourceTree is an app's live tree on one cluster, as its agent read it
// just now; Error says why there is none.
type ResourceTree struct {
	Cluster string         `json:"cluster"`
	Nodes   []ResourceNode `json:"nodes"`
	Error   string         `json:"error,omitempty"`
}

// ResourcesResponse answers GET /api/v1/apps/{name}/resources[?cluster=C]:
// one tree per targeted cluster (or the one asked for).
type ResourcesResponse struct {
	App      string         `json:"app"`
	Clusters []ResourceTree `json:"clusters"`
}

// LiveManifestResponse answers GET /api/v1/apps/{name}/live/manifest: the
// live object without managedFields; a Secret's values are redacted by the
// agent and never reach the hub.
type LiveManifestResponse struct {
	App     string          `json:"app"`
	Cluster string          `json:"cluster"`
	Object  json.RawMessage `json:"object"`
}

// Event is a Kubernetes event of an object of an app's tree.
type Event struct {
	Object   ObjectRef  `json:"object"`
	Type     string     `json:"type"`
	Reason   string     `json:"reason"`
	Message  string     `json:"message"`
	Count    int32      `json:"count,omitempty"`
	LastSeen *time.Time `json:"lastSeen,omitempty"`
	Source   string     `json:"source,omitempty"`
}

// AppEventsResponse answers GET /api/v1/apps/{name}/live/events: the events
// of one object and what it owns, or of the whole tree, oldest first.
type AppEventsResponse struct {
	App     string  `json:"app"`
	Cluster string  `json:"cluster"`
	Events  []Event `json:"events"`
}

// RenderedManifestsResponse answers GET /api/v1/apps/{name}/manifests: the
// objects the hub rendered for each cluster (a Secret's values redacted).
type RenderedManifestsResponse struct {
	App      string              `json:"app"`
	Clusters []RenderedManifests `json:"clusters"`
}

// RenderedManifests is the bundle of one cluster.
type RenderedManifests struct {
	Cluster  string            `json:"cluster"`
	Revision string            `json:"revision,omitempty"`
	Digest   string            `json:"digest,omitempty"`
	Objects  []json.RawMessage `json:"objects"`
	Error    string            `json:"error,omitempty"`
}

// Live actions.
const (
	// ActionRestart restarts a Deployment's, StatefulSet's or DaemonSet's
	// rollout (kubectl rollout restart).
	ActionRestart = "restart"
	// ActionDelete deletes a Pod.
	ActionDelete = "delete"
	// ActionRun creates a Job from a CronJob.
	ActionRun = "run"
)

// ActionRequest is the body of POST /api/v1/apps/{name}/actions.
type ActionRequest struct {
	Cluster string    `json:"cluster,omitempty"`
	Action  string    `json:"action"`
	Object  ObjectRef `json:"object"`
}

// ActionResponse says what the agent did.
type ActionResponse struct {
	Cluster string `json:"cluster"`
	Message string `json:"message"`
}

// LogPodHeader and LogContainerHeader name, on the answer of GET
// /api/v1/apps/{name}/logs (text/plain, streamed), the pod and container
// whose log it is.
const (
	LogPodHeader       = "X-Flotilla-Pod"
	LogContainerHeader = "X-Flotilla-Container"
)
