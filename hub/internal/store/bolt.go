package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"
)

// schemaVersion is the layout version written into the meta bucket. Open
// refuses a file with a newer version.
const schemaVersion = 1

// Bucket names.
var (
	bucketMeta        = []byte("meta")
	bucketClusters    = []byte("clusters")     // name -> json Cluster
	bucketJoinTokens  = []byte("join_tokens")  // cluster -> json JoinToken
	bucketAPITokens   = []byte("api_tokens")   // id -> json APIToken
	bucketCA          = []byte("ca")           // "cert", "key" -> PEM
	bucketStatus      = []byte("status")       // cluster \0 app -> proto AppStatus
	bucketHistory     = []byte("history")      // id -> json HistoryEntry
	bucketHistApp     = []byte("history_app")  // app \0 id -> nil
	bucketHistCluster = []byte("history_cl")   // cluster \0 id -> nil
	bucketHistPair    = []byte("history_pair") // app \0 cluster \0 id -> nil
	bucketAudit       = []byte("audit")        // id -> json AuditEntry
	bucketPins        = []byte("pins")         // app \0 cluster -> json Pin
	bucketCaps        = []byte("capabilities") // cluster -> json ClusterCapabilities
	bucketRollouts    = []byte("rollouts")     // app -> json RolloutRecord

	allBuckets = [][]byte{bucketMeta, bucketClusters, bucketJoinTokens, bucketAPITokens, bucketCA,
		bucketStatus, bucketHistory, bucketHistApp, bucketHistCluster, bucketHistPair, bucketAudit, bucketPins, bucketCaps, bucketRollouts}

	keySchema = []byte("schema")
)

// DefaultHistoryLimit is how many history entries Open keeps per (app,
// cluster); older ones are dropped as new ones are appended.
const DefaultHistoryLimit = 100

// Options tune OpenWithOptions. The zero value means the defaults.
type Options struct {
	// HistoryLimit is the number of history entries kept per (app, cluster);
	// 0 means DefaultHistoryLimit, negative means unlimited.
	HistoryLimit int
	// MaxBatchDelay bounds how long PutStatus waits to share a transaction
	// with other writers; 0 means bbolt's default (10 ms).
	MaxBatchDelay time.Duration
	// LockTimeout bounds the wait for the file lock held by another
	// process; 0 means 5 s.
	LockTimeout time.Duration
}

// Bolt is the embedded Store on a single bbolt file. It is safe for
// concurrent use; one process at a time holds the file.
type Bolt struct {
	db           *bolt.DB
	log          hclog.Logger
	historyLimit int
}

var _ Store = (*Bolt)(nil)

// Open opens or creates the store file at path (its folder is created with
// mode 0700) with default Options.
func Open(path string, log hclog.Logger) (*Bolt, error) {
	return OpenWithOptions(path, log, Options{})
}

// OpenWithOptions opens or creates the store file at path.
func OpenWithOptions(path string, log hclog.Logger, opts Options) (*Bolt, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	log = log.Named("store")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create state dir for %s: %w", path, err)
	}
	lockTimeout := opts.LockTimeout
	if lockTimeout == 0 {
		lockTimeout = 5 * time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: lockTimeout,
		// The freelist is rebuilt on open instead of written on every
		// commit: fewer pages per fsync, same durability.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if opts.MaxBatchDelay > 0 {
		db.MaxBatchDelay = opts.MaxBatchDelay
	}
	if err := db.Update(initBuckets); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	limit := opts.HistoryLimit
	if limit == 0 {
		limit = DefaultHistoryLimit
	}
	log.Debug("store opened", "path", path)
	return &Bolt{db: db, log: log, historyLimit: limit}, nil
}

func initBuckets(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(keySchema); v != nil {
		got, err := strconv.Atoi(string(v))
		if err != nil {
			return fmt.Errorf("read schema version %q: %w", v, err)
		}
		if got > schemaVersion {
			return fmt.Errorf("schema version %d is newer than this hub's %d", got, schemaVersion)
		}
		if got == schemaVersion {
			return nil
		}
	}
	return meta.Put(keySchema, []byte(strconv.Itoa(schemaVersion)))
}

// Close closes the file. Calls after Close fail.
func (s *Bolt) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.db.Path(), err)
	}
	return nil
}

// Path returns the store file's path.
func (s *Bolt) Path() string { return s.db.Path() }

// Backup writes a consistent snapshot in one read transaction; writers go
// on meanwhile. Restore by starting the hub with the snapshot as its store file.
func (s *Bolt) Backup(ctx context.Context, w io.Writer) error {
	err := s.view(ctx, func(tx *bolt.Tx) error {
		_, err := tx.WriteTo(w)
		return err
	})
	if err != nil {
		return fmt.Errorf("backup store %s: %w", s.db.Path(), err)
	}
	return nil
}

// update runs fn in a read-write transaction, committed with fsync.
func (s *Bolt) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(fn)
}

// batch runs fn in a transaction shared with concurrent batch callers. fn
// may run more than once and must set its results afresh each time.
func (s *Bolt) batch(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Batch(fn)
}

func (s *Bolt) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

// CheckName rejects names the key layout cannot hold.
func CheckName(what, name string) error {
	if name == "" {
		return fmt.Errorf("%s name is empty: %w", what, ErrInvalid)
	}
	if len(name) > 1024 || bytes.IndexByte([]byte(name), 0) >= 0 {
		return fmt.Errorf("%s name %q: too long or contains NUL: %w", what, name, ErrInvalid)
	}
	return nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// IDKey is the key of a numbered record (big-endian, so keys sort as IDs).
func IDKey(id uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], id)
	return k[:]
}

// KeyID is the ID an IDKey key holds.
func KeyID(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// joinKey joins parts with NUL separators.
func joinKey(parts ...[]byte) []byte {
	return bytes.Join(parts, []byte{0})
}
