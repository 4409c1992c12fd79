package kubestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Options tune New. The zero value means the defaults.
type Options struct {
	// Namespace holds every object of the store. Required.
	Namespace string
	// HistoryLimit is as Options.HistoryLimit.
	HistoryLimit int
	// QPS and Burst bound the client's request rate; 0 means 200 and 400.
	QPS   float32
	Burst int
}

// Store is the store.Store on the Kubernetes API of the cluster the hub runs in:
// custom resources of the group hub.flotilla.dev for clusters, API token
// metadata, statuses, history, audit, pins and capabilities, Secrets for
// the CA and the token hashes. Several hubs may share one namespace: every
// read-modify-write carries the resourceVersion it read, and a conflict is
// retried from a fresh read, never overwritten. See docs/decisions.md.
type Store struct {
	ns           string
	dyn          dynamic.Interface
	core         kubernetes.Interface
	log          hclog.Logger
	historyLimit int

	ids idClock

	statusMu sync.Mutex
	pending  map[string]*statusBatch // by cluster, waiting to be written
	writing  map[string]bool         // a writer goroutine runs for the cluster
	closing  chan struct{}
	wg       sync.WaitGroup
	closed   sync.Once

	watch *kubeCache

	histMu    sync.Mutex
	histCount map[string]int // (app, cluster) → entries it has at most, as far as this store knows
	// histSlots bounds the history appends in flight (historyWriters).
	histSlots chan struct{}
}

var _ store.Store = (*Store)(nil)

// New returns a store in opts.Namespace of the API server cfg points
// at. The CRDs must be installed (InstallCRDs or deploy/).
func New(cfg *rest.Config, opts Options, log hclog.Logger) (*Store, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if opts.Namespace == "" {
		return nil, fmt.Errorf("kubernetes store: no namespace: %w", store.ErrInvalid)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	if cfg.QPS == 0 {
		cfg.QPS = 200
	}
	if cfg.Burst == 0 {
		cfg.Burst = 400
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes store: %w", err)
	}
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes store: %w", err)
	}
	limit := opts.HistoryLimit
	if limit == 0 {
		limit = store.DefaultHistoryLimit
	}
	k := &Store{
		ns: opts.Namespace, dyn: dyn, core: core, log: log.Named("store"), historyLimit: limit,
		pending: map[string]*statusBatch{}, writing: map[string]bool{}, closing: make(chan struct{}),
		histCount: map[string]int{}, histSlots: make(chan struct{}, historyWriters),
	}
	k.watch = k.newCache()
	return k, nil
}

// Namespace returns the namespace the store lives in.
func (k *Store) Namespace() string { return k.ns }

// Close waits for status writes in flight. Calls after Close fail.
func (k *Store) Close() error {
	k.closed.Do(func() { close(k.closing) })
	k.wg.Wait()
	k.watch.factory.Shutdown()
	return nil
}

// Backup writes a bbolt snapshot of everything the store holds (the same
// file format as Bolt's backups): restore it with `flotilla-hub migrate
// --from bbolt --to kubernetes`, or run a single hub on it.
func (k *Store) Backup(ctx context.Context, w io.Writer) error {
	if err := k.check(ctx); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	dir, err := os.MkdirTemp("", "flotilla-backup-")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(dir)
	b, err := store.OpenWithOptions(filepath.Join(dir, "hub.db"), k.log, store.Options{HistoryLimit: -1})
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer b.Close()
	if _, err := store.Migrate(ctx, b, k); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return b.Backup(ctx, w)
}

// check refuses work on a closed store or with a finished context.
func (k *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-k.closing:
		return errStoreClosed
	default:
		return nil
	}
}

var errStoreClosed = errors.New("store closed")

// Object names: a name that is a valid object name is used as it is (so
// `kubectl get` shows it), anything else as "z--" and the first 20 bytes of
// its SHA-256 in hex; the real name is always in the spec. Names starting
// with "z--" are hashed too, so the two forms never collide.
const hashedPrefix = "z--"

func hashName(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hashedPrefix + hex.EncodeToString(sum[:20])
}

// objectName returns prefix+s as an object name, or prefix and s's hash.
func objectName(prefix, s string) string {
	n := prefix + s
	if s != "" && len(n) <= 200 && !strings.HasPrefix(s, hashedPrefix) && len(validation.IsDNS1123Subdomain(n)) == 0 {
		return n
	}
	return prefix + hashName(s)
}

// labelValue returns s as a label value, or its hash.
func labelValue(s string) string {
	if s != "" && !strings.HasPrefix(s, hashedPrefix) && len(validation.IsValidLabelValue(s)) == 0 {
		return s
	}
	return hashName(s)
}

// Labels of the store's objects.
const (
	labelCluster = "hub.flotilla.dev/cluster"
	labelApp     = "hub.flotilla.dev/app"
	labelPair    = "hub.flotilla.dev/app-cluster"
	labelName    = "hub.flotilla.dev/name"
	labelRecord  = "hub.flotilla.dev/record"
	labelManaged = "app.kubernetes.io/managed-by"
	managedBy    = "flotilla-hub"
)

func labels(record string, kv ...string) map[string]string {
	l := map[string]string{labelManaged: managedBy, labelRecord: record}
	for i := 0; i+1 < len(kv); i += 2 {
		l[kv[i]] = labelValue(kv[i+1])
	}
	return l
}

// conflictBackoff paces the retries of optimistic-concurrency conflicts:
// many hubs may write one object at once (after a commit, a failover).
// Its Steps are not a limit: see onConflict.
var conflictBackoff = wait.Backoff{Duration: 5 * time.Millisecond, Factor: 1.5, Jitter: 0.5, Cap: time.Second}

// conflictPatience bounds the conflict retries of a caller whose ctx has no
// deadline.
const conflictPatience = 2 * time.Minute

// onConflict runs fn again while it fails with a conflict (a stale
// resourceVersion) or AlreadyExists (a create that lost a race), until ctx
// ends (or conflictPatience passed, for a ctx without deadline); it then
// returns the last conflict. fn re-reads what it changes on each try, so
// a retry never overwrites another writer's update. Each conflict means
// another writer's update landed, so under contention the writers get
// through one by one; a fixed count of tries ran out with 45 updates of
// one object at once on a loaded machine.
func onConflict(ctx context.Context, fn func() error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, conflictPatience)
		defer cancel()
	}
	b := conflictBackoff
	b.Steps = math.MaxInt32
	for {
		err := fn()
		if err == nil || !(apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) {
			return err
		}
		t := time.NewTimer(b.Step())
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// apiErr maps API errors to the store's sentinels.
func apiErr(err error) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w (%v)", store.ErrNotFound, err)
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%w (%v)", store.ErrConflict, err)
	}
	return err
}

// newObject returns a custom resource of kind with spec.
func newObject(r resource, name string, lbl map[string]string, spec any) (*unstructured.Unstructured, error) {
	o := &unstructured.Unstructured{Object: map[string]any{"apiVersion": Group + "/" + Version, "kind": r.kind}}
	o.SetName(name)
	o.SetLabels(lbl)
	if err := setSpec(o, spec); err != nil {
		return nil, err
	}
	return o, nil
}

func setSpec(o *unstructured.Unstructured, spec any) error {
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	o.Object["spec"] = m
	return nil
}

func getSpec(o *unstructured.Unstructured, into any) error {
	data, err := json.Marshal(o.Object["spec"])
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, into); err != nil {
		return fmt.Errorf("decode %s %s: %w", o.GetKind(), o.GetName(), err)
	}
	return nil
}

func (k *Store) res(r resource) dynamic.ResourceInterface {
	return k.dyn.Resource(r.gvr()).Namespace(k.ns)
}

// get reads a custom resource and decodes its spec; ErrNotFound if none.
func (k *Store) get(ctx context.Context, r resource, name string, into any) (*unstructured.Unstructured, error) {
	o, err := k.res(r).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, apiErr(err)
	}
	return o, getSpec(o, into)
}

// list reads every object of r matching selector, in pages.
func (k *Store) list(ctx context.Context, r resource, selector string) ([]unstructured.Unstructured, error) {
	var out []unstructured.Unstructured
	opts := metav1.ListOptions{LabelSelector: selector, Limit: 500}
	for {
		l, err := k.res(r).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, l.Items...)
		if l.GetContinue() == "" {
			return out, nil
		}
		opts.Continue = l.GetContinue()
	}
}

// upsert creates the object or replaces its spec, from the
// resourceVersion it read; conflicts are retried.
func (k *Store) upsert(ctx context.Context, r resource, name string, lbl map[string]string, spec any) error {
	return onConflict(ctx, func() error {
		cur, err := k.res(r).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			o, err := newObject(r, name, lbl, spec)
			if err != nil {
				return err
			}
			o, err = k.res(r).Create(ctx, o, metav1.CreateOptions{})
			k.noteWrite(r, o, err)
			return err
		}
		if err != nil {
			return err
		}
		if err := setSpec(cur, spec); err != nil {
			return err
		}
		o, err := k.res(r).Update(ctx, cur, metav1.UpdateOptions{})
		k.noteWrite(r, o, err)
		return err
	})
}

// replace creates the object or replaces its whole spec with one request
// (a JSON patch; no read first), for objects whose last write wins
// whatever they held (a cluster's capabilities: each hub a cluster's agent
// attaches to writes what the agent reported). It costs one request where
// upsert costs two.
func (k *Store) replace(ctx context.Context, r resource, name string, lbl map[string]string, spec any) error {
	o, err := newObject(r, name, lbl, spec)
	if err != nil {
		return err
	}
	patch, err := json.Marshal([]map[string]any{{"op": "replace", "path": "/spec", "value": o.Object["spec"]}})
	if err != nil {
		return err
	}
	return onConflict(ctx, func() error {
		u, err := k.res(r).Patch(ctx, name, types.JSONPatchType, patch, metav1.PatchOptions{})
		if apierrors.IsNotFound(err) {
			u, err = k.res(r).Create(ctx, o.DeepCopy(), metav1.CreateOptions{})
		}
		k.noteWrite(r, u, err)
		return err
	})
}

// noteWrite records a create or update of r that the API server answered
// with o, for the cache's read-your-writes.
func (k *Store) noteWrite(r resource, o *unstructured.Unstructured, err error) {
	w := k.watch.of(r)
	if w == nil || err != nil || o == nil {
		return
	}
	w.wrote(k.ns+"/"+o.GetName(), o.GetResourceVersion())
}

// noteDelete records a delete of r's object name: the cache's reads wait
// until it is gone there too.
func (k *Store) noteDelete(r resource, name string) {
	if w := k.watch.of(r); w != nil {
		w.deleted(k.ns + "/" + name)
	}
}

// del deletes an object; missing is ErrNotFound.
func (k *Store) del(ctx context.Context, r resource, name string) error {
	err := k.res(r).Delete(ctx, name, metav1.DeleteOptions{})
	k.noteDelete(r, name)
	return apiErr(err)
}
