package api

import "time"

// ClusterView is a cluster as the API shows it (GET /api/v1/clusters,
// GET /api/v1/clusters/{name}, and the answer to a label change).
type ClusterView struct {
	Name         string            `json:"name"`
	Labels       map[string]string `json:"labels,omitempty"`
	Connected    bool              `json:"connected"`
	LastSeen     time.Time         `json:"lastSeen,omitzero"`
	AgentVersion string            `json:"agentVersion,omitempty"`
	Enrolled     bool              `json:"enrolled"`
	CertNotAfter time.Time         `json:"certNotAfter,omitzero"`
	CreatedAt    time.Time         `json:"createdAt,omitzero"`
}

// AddClusterRequest registers a cluster (POST /api/v1/clusters). Labels
// must be Kubernetes label keys and values.
type AddClusterRequest struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// JoinResponse carries what an agent needs to enrol, once (the answer to
// adding a cluster and to POST /api/v1/clusters/{name}/token).
type JoinResponse struct {
	Cluster   string    `json:"cluster"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	HubAddr   string    `json:"hubAddr"`
	CAHash    string    `json:"caHash"`
	// Command is the agent command line that enrols and connects.
	Command string `json:"command"`
}

// LabelRequest sets (value non-empty) or removes (value "") labels (PATCH
// /api/v1/clusters/{name}/labels).
type LabelRequest struct {
	Labels map[string]string `json:"labels"`
}
