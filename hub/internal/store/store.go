package store

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"time"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Errors callers branch on. Every error the store returns that means one of
// these wraps it, so test with errors.Is.
var (
	// ErrNotFound: the named cluster, token, history entry or CA does not exist.
	ErrNotFound = errors.New("not found")
	// ErrTokenInvalid: the token is malformed, unknown, superseded or belongs
	// to another cluster. It deliberately does not say which.
	ErrTokenInvalid = errors.New("token invalid")
	// ErrTokenExpired: the join token matched but is past its expiry.
	ErrTokenExpired = errors.New("token expired")
	// ErrTokenUsed: the join token matched but was already consumed.
	ErrTokenUsed = errors.New("token already used")
	// ErrConflict: the object already exists (CreateCluster, CreateAPIToken
	// with a taken name) or an update tried to change an identity field.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: an argument cannot be stored (empty or NUL-containing name,
	// unknown role, nil status).
	ErrInvalid = errors.New("invalid argument")
	// ErrBadCursor: Page.After is not a cursor this store handed out.
	ErrBadCursor = errors.New("bad page cursor")
)

// API token roles.
const (
	RoleAdmin    = "admin"
	RoleReadOnly = "readonly"
	// RoleDeployer may sync, roll back and pin the apps of its Projects.
	RoleDeployer = "deployer"
)

// API token kinds: an API token made with `flotilla token create`, a web
// UI session and a CLI session made by single sign-on.
const (
	KindToken      = ""
	KindWebSession = "web-session"
	KindCLISession = "cli-session"
)

// History results.
const (
	ResultSucceeded = "Succeeded"
	ResultFailed    = "Failed"
)

// Page limits. A Page with Limit <= 0 gets DefaultPageLimit; larger limits
// are cut to MaxPageLimit.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// Cluster is a cluster known to the hub: its labels and its enrolled identity.
type Cluster struct {
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt time.Time         `json:"createdAt,omitzero"`
	// CertSerial is the serial of the cluster's current client certificate;
	// any other certificate for this cluster is superseded and refused
	// (but see PendingSerial and CertNotBefore).
	CertSerial    string    `json:"certSerial,omitempty"`
	CertNotBefore time.Time `json:"certNotBefore,omitzero"`
	CertNotAfter  time.Time `json:"certNotAfter,omitzero"`
	// PendingSerial is the serial of a certificate a renewal issued that
	// the agent has not connected with yet. Until it does, CertSerial stays
	// valid too, so an answer lost with its stream does not lock the agent
	// out; its first connection with the pending certificate makes it the
	// current one. An enrolment clears it.
	PendingSerial    string    `json:"pendingSerial,omitempty"`
	PendingNotBefore time.Time `json:"pendingNotBefore,omitzero"`
	PendingNotAfter  time.Time `json:"pendingNotAfter,omitzero"`
	EnrolledAt       time.Time `json:"enrolledAt,omitzero"`
	LastSeen         time.Time `json:"lastSeen,omitzero"`
	AgentVersion     string    `json:"agentVersion,omitempty"`
	Revoked          bool      `json:"revoked,omitempty"`
	// ConnectedTo names the hub replica holding the agent's stream (hubs
	// sharing a Kubernetes store; written on connect and disconnect only).
	// It counts while that replica's heartbeat is fresh.
	ConnectedTo string `json:"connectedTo,omitempty"`
}

// JoinToken is the stored form of a one-time enrolment token. Only the
// SHA-256 hash (hex) of the raw token is kept. A cluster has at most one.
type JoinToken struct {
	Cluster   string    `json:"cluster"`
	Hash      string    `json:"hash"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// UsedAt is set once the token was consumed.
	UsedAt time.Time `json:"usedAt,omitzero"`
}

// APIToken is the stored form of a bearer token for the HTTP API. Only the
// SHA-256 hash (hex) of the raw token is kept; the raw token is shown once.
type APIToken struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Hash      string    `json:"hash"`
	Role      string    `json:"role"` // RoleAdmin, RoleDeployer or RoleReadOnly
	CreatedAt time.Time `json:"createdAt,omitzero"`
	// Projects are the projects a RoleDeployer token may deploy.
	Projects []string `json:"projects,omitempty"`
	// ExpiresAt is when the token stops working; zero never (tokens made
	// before tokens expired, and the first admin token).
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// Kind is KindToken, KindWebSession or KindCLISession. Only tokens
	// (KindToken) need unique names; a session is named after its person.
	Kind string `json:"kind,omitempty"`
	// Subject and Email name the person a session belongs to (the OpenID
	// Connect provider's sub and email claims).
	Subject string `json:"subject,omitempty"`
	Email   string `json:"email,omitempty"`
}

// Expired reports whether the token has expired at now.
func (t APIToken) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

// HistoryEntry records one sync of one (app, cluster).
type HistoryEntry struct {
	ID          uint64    `json:"id"`
	App         string    `json:"app"`
	Cluster     string    `json:"cluster"`
	Revision    string    `json:"revision,omitempty"`
	Digest      string    `json:"digest,omitempty"`
	StartedAt   time.Time `json:"startedAt,omitzero"`
	FinishedAt  time.Time `json:"finishedAt,omitzero"`
	InitiatedBy string    `json:"initiatedBy,omitempty"`
	Result      string    `json:"result,omitempty"` // ResultSucceeded or ResultFailed
	Message     string    `json:"message,omitempty"`
	// Hooks are the resource hooks the sync ran, in the order they
	// started.
	Hooks []HookRecord `json:"hooks,omitempty"`
}

// HookRecord is one run of a resource hook in one phase of a sync, as its
// agent reported it.
type HookRecord struct {
	// Phase is PreSync, Sync, PostSync or SyncFail.
	Phase     string `json:"phase"`
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	// Name is the created object's name (generated for a hook with
	// metadata.generateName).
	Name string `json:"name,omitempty"`
	// Hook is the hook's identity in git: its name or generateName.
	Hook string `json:"hook"`
	Wave int32  `json:"wave,omitempty"`
	// Status is Running, Succeeded, Failed or Unknown.
	Status     string    `json:"status"`
	Message    string    `json:"message,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// Deleted is set when the hook's delete policy removed it.
	Deleted bool `json:"deleted,omitempty"`
}

// HookRecords converts an operation's hook results.
func HookRecords(op *apiv1alpha1.Operation) []HookRecord {
	hs := op.GetHooks()
	if len(hs) == 0 {
		return nil
	}
	out := make([]HookRecord, 0, len(hs))
	for _, h := range hs {
		r := HookRecord{
			Phase: h.GetPhase(), Group: h.GetGroup(), Kind: h.GetKind(), Namespace: h.GetNamespace(), Name: h.GetName(),
			Hook: h.GetHook(), Wave: h.GetWave(), Status: h.GetStatus().Name(), Message: h.GetMessage(), Deleted: h.GetDeleted(),
		}
		if h.GetStartedAt() != nil {
			r.StartedAt = h.GetStartedAt().AsTime()
		}
		if h.GetFinishedAt() != nil {
			r.FinishedAt = h.GetFinishedAt().AsTime()
		}
		out = append(out, r)
	}
	return out
}

// AuditEntry records one call that changed something.
type AuditEntry struct {
	ID     uint64    `json:"id"`
	Time   time.Time `json:"time,omitzero"`
	Actor  string    `json:"actor,omitempty"`
	Action string    `json:"action,omitempty"`
	Target string    `json:"target,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// ClusterCapabilities is what a cluster's agent last reported about its
// API server (see apiv1alpha1.ClusterCapabilities): the hub renders Helm
// charts for that cluster with them, also after a restart.
type ClusterCapabilities struct {
	Cluster     string    `json:"cluster"`
	KubeVersion string    `json:"kubeVersion"`
	APIVersions []string  `json:"apiVersions"`
	ReportedAt  time.Time `json:"reportedAt,omitzero"`
}

// Pin holds an app (on one cluster, or on all when Cluster is "") at a
// revision after a rollback, until it is unpinned.
type Pin struct {
	App       string    `json:"app"`
	Cluster   string    `json:"cluster,omitempty"`
	Revision  string    `json:"revision"`
	CreatedAt time.Time `json:"createdAt,omitzero"`
}

// RolloutRecord is one app's progressive rollout: State is the JSON of
// hub/internal/rollout.State, which the store never reads; it gives back
// the same JSON value (not necessarily the same bytes: the Kubernetes
// store re-encodes it). A store keeps at most one record per app.
type RolloutRecord struct {
	App       string          `json:"app"`
	State     json.RawMessage `json:"state"`
	UpdatedAt time.Time       `json:"updatedAt,omitzero"`
}

// StatusRecord is one (app, cluster) status as ListStatus returns it.
type StatusRecord struct {
	Cluster string
	Status  *apiv1alpha1.AppStatus
}

// Page selects one page of a list. After is the cursor a previous call
// returned ("" for the first page); the list calls return "" as the next
// cursor after the last page.
type Page struct {
	After string
	Limit int
}

// Store is the hub's durable state. Every method that returns without error
// has committed its change to stable storage.
type Store interface {
	// CreateCluster stores a new cluster; ErrConflict if the name is taken.
	CreateCluster(ctx context.Context, c Cluster) error
	// PutCluster creates or replaces a cluster.
	PutCluster(ctx context.Context, c Cluster) error
	GetCluster(ctx context.Context, name string) (Cluster, error)
	// ListClusters lists clusters in name order.
	ListClusters(ctx context.Context, p Page) ([]Cluster, string, error)
	// DeleteCluster deletes the cluster, its join token and its statuses.
	// Its sync history stays.
	DeleteCluster(ctx context.Context, name string) error
	// UpdateCluster reads the cluster, calls fn and writes the result in one
	// transaction. An error from fn aborts without writing and is returned.
	UpdateCluster(ctx context.Context, name string, fn func(*Cluster) error) error
	// TouchCluster records that the cluster's agent was seen at seen,
	// running agentVersion. Concurrent calls share one transaction and
	// one fsync, so agents reconnecting all at once cost a few writes.
	// ErrNotFound if the cluster does not exist.
	TouchCluster(ctx context.Context, name string, seen time.Time, agentVersion string) error

	// CreateJoinToken makes a random join token for an existing cluster,
	// valid for ttl from now, and returns it raw. It supersedes any earlier
	// token of that cluster.
	CreateJoinToken(ctx context.Context, cluster string, ttl time.Duration, now time.Time) (string, error)
	// ConsumeJoinToken checks raw against the cluster's token and marks it
	// used, atomically: of concurrent calls with the same token one succeeds.
	ConsumeJoinToken(ctx context.Context, cluster, raw string, now time.Time) error
	// EnrollCluster consumes the cluster's join token (as ConsumeJoinToken)
	// and applies fn to the cluster in one transaction; if fn fails the
	// token stays unused and nothing is written.
	EnrollCluster(ctx context.Context, cluster, raw string, now time.Time, fn func(*Cluster) error) error
	// GetJoinToken returns the stored form (hash, expiry, use) of the
	// cluster's join token; ErrNotFound if it has none.
	GetJoinToken(ctx context.Context, cluster string) (JoinToken, error)

	// GetCA returns the hub CA's certificate, and its key if one is still
	// stored (older stores); ErrNotFound when none was stored yet.
	GetCA(ctx context.Context) (certPEM, keyPEM []byte, err error)
	// PutCA stores the CA certificate and the key, or with an empty key
	// removes a stored key.
	PutCA(ctx context.Context, certPEM, keyPEM []byte) error

	// CreateAPIToken makes a bearer token with a unique name and returns it
	// raw along with its stored form.
	CreateAPIToken(ctx context.Context, name, role string, now time.Time) (string, APIToken, error)
	// IssueAPIToken makes a bearer token from spec (Name, Role, Projects,
	// ExpiresAt, Kind, Subject, Email; ID, Hash and CreatedAt are set) and
	// returns it raw with its stored form. Names of KindToken tokens are
	// unique (ErrConflict); a RoleDeployer token needs projects
	// (ErrInvalid).
	IssueAPIToken(ctx context.Context, spec APIToken, now time.Time) (string, APIToken, error)
	// LookupAPIToken returns the token raw authenticates; ErrTokenInvalid otherwise.
	LookupAPIToken(ctx context.Context, raw string) (APIToken, error)
	// ListAPITokens lists tokens in ID order.
	ListAPITokens(ctx context.Context, p Page) ([]APIToken, string, error)
	DeleteAPIToken(ctx context.Context, id string) error

	// PutStatus stores the status of st.App on cluster. Concurrent calls
	// share one transaction (and one fsync). ErrNotFound if the cluster
	// does not exist.
	PutStatus(ctx context.Context, cluster string, st *apiv1alpha1.AppStatus) error
	DeleteStatus(ctx context.Context, cluster, app string) error
	// ListStatus lists the statuses of one cluster, or of all when cluster
	// is "", ordered by cluster then app.
	ListStatus(ctx context.Context, cluster string) ([]StatusRecord, error)

	// AppendHistory stores e with a new ID (e.ID is ignored) and returns
	// the ID. IDs grow with time.
	AppendHistory(ctx context.Context, e HistoryEntry) (uint64, error)
	GetHistory(ctx context.Context, id uint64) (HistoryEntry, error)
	// ListHistory lists entries newest first, filtered by app and cluster
	// when they are not "".
	ListHistory(ctx context.Context, app, cluster string, p Page) ([]HistoryEntry, string, error)

	// AppendAudit stores e with a new ID (e.ID is ignored).
	AppendAudit(ctx context.Context, e AuditEntry) error
	// ListAudit lists entries newest first.
	ListAudit(ctx context.Context, p Page) ([]AuditEntry, string, error)

	// PutPin records a rollback pin; it replaces a pin of the same (app,
	// cluster). Cluster "" pins the app on every cluster.
	PutPin(ctx context.Context, p Pin) error
	// DeletePins removes the pin of (app, cluster); cluster "" removes every
	// pin of the app.
	DeletePins(ctx context.Context, app, cluster string) error
	// ListPins lists every pin, ordered by app then cluster.
	ListPins(ctx context.Context) ([]Pin, error)
	// PutCapabilities records the capabilities a cluster reported,
	// replacing the previous ones; DeleteCluster removes them.
	PutCapabilities(ctx context.Context, c ClusterCapabilities) error
	// ListCapabilities lists the capabilities of every cluster that
	// reported them, in cluster name order.
	ListCapabilities(ctx context.Context) ([]ClusterCapabilities, error)

	// Rollouts (progressive rollouts, docs/rollouts.md): one record per
	// app, written when its rollout moves (a step starts or ends, a
	// cluster is reached, a person pauses it), so a restarted hub resumes
	// it.
	//
	// PutRollout creates or replaces the record of r.App; ErrInvalid if
	// State is not JSON.
	PutRollout(ctx context.Context, r RolloutRecord) error
	// UpdateRollout reads app's record (nil: none), calls fn with it and
	// writes what fn returns (nil: nothing), atomically: with several hubs
	// on one store, a record written by another meanwhile makes fn run
	// again on it. fn's error is returned as is, and nothing is written.
	UpdateRollout(ctx context.Context, app string, fn func(cur *RolloutRecord) (*RolloutRecord, error)) error
	// DeleteRollout removes the record of app (none: no error).
	DeleteRollout(ctx context.Context, app string) error
	// ListRollouts lists every record, in app name order.
	ListRollouts(ctx context.Context) ([]RolloutRecord, error)

	// Backup writes a consistent snapshot of the whole store to w while the
	// store stays in use. The snapshot is itself a store file.
	Backup(ctx context.Context, w io.Writer) error
	Close() error
}
