package api

import "time"

// Results of a history entry.
const (
	ResultSucceeded = "Succeeded"
	ResultFailed    = "Failed"
)

// HistoryEntry is one sync an agent ran (GET /api/v1/apps/{name}/history,
// GET /api/v1/clusters/{name}/history), newest first.
type HistoryEntry struct {
	ID          uint64    `json:"id"`
	App         string    `json:"app"`
	Cluster     string    `json:"cluster"`
	Revision    string    `json:"revision,omitempty"`
	Digest      string    `json:"digest,omitempty"`
	StartedAt   time.Time `json:"startedAt,omitzero"`
	FinishedAt  time.Time `json:"finishedAt,omitzero"`
	InitiatedBy string    `json:"initiatedBy,omitempty"`
	// Result is ResultSucceeded or ResultFailed.
	Result  string `json:"result,omitempty"`
	Message string `json:"message,omitempty"`
	// Hooks are the resource hooks the sync ran, in the order they
	// started.
	Hooks []Hook `json:"hooks,omitempty"`
}

// RollbackRequest pins an app to an earlier revision (POST
// /api/v1/apps/{name}/rollback). Give Revision (a commit, tag or branch) or
// HistoryID (an entry of the app's history). Cluster limits the rollback to
// one cluster; with HistoryID and no Cluster, the entry's own cluster is
// rolled back.
type RollbackRequest struct {
	Revision  string `json:"revision,omitempty"`
	HistoryID uint64 `json:"historyId,omitempty"`
	Cluster   string `json:"cluster,omitempty"`
}

// RollbackResponse says what was pinned and where the sync went.
type RollbackResponse struct {
	App      string           `json:"app"`
	Revision string           `json:"revision"`
	Cluster  string           `json:"cluster,omitempty"`
	Targets  []RollbackTarget `json:"targets"`
}

// Sync values of a RollbackTarget.
const (
	RollbackSent    = "sent"
	RollbackPending = "pending"
)

// RollbackTarget is one cluster of a rollback.
type RollbackTarget struct {
	Cluster string `json:"cluster"`
	Digest  string `json:"digest,omitempty"`
	// Sync is RollbackSent (the agent holds the pinned bundle and was told
	// to apply it once) or RollbackPending (Message says why; run `app
	// sync` later).
	Sync    string `json:"sync"`
	Message string `json:"message,omitempty"`
}

// UnpinRequest lifts a rollback pin (POST /api/v1/apps/{name}/unpin);
// Cluster "" lifts every pin of the app.
type UnpinRequest struct {
	Cluster string `json:"cluster,omitempty"`
}

// UnpinResponse says which pin was lifted; Cluster "" means all of the
// app's.
type UnpinResponse struct {
	App     string `json:"app"`
	Cluster string `json:"cluster"`
}

// AuditEntry is one change made through the API (GET /api/v1/audit),
// newest first.
type AuditEntry struct {
	ID     uint64    `json:"id"`
	Time   time.Time `json:"time,omitzero"`
	Actor  string    `json:"actor,omitempty"`
	Action string    `json:"action,omitempty"`
	Target string    `json:"target,omitempty"`
	Detail string    `json:"detail,omitempty"`
}
