package inventory

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"

	"github.com/flotilla-cd/flotilla/agent/internal/kube"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Store reads and writes records as Secrets in one namespace. It is the
// only writer of its Secrets: it remembers each app's index as it last
// wrote or read it, so that a save does not read it back first, and after
// a Load it knows which apps have an index and chunks at all, so that a new
// app's save reads nothing (a failed write makes it read that app again). Callers
// serialise the writes of one app; writes of different apps may run
// concurrently.
type Store struct {
	secrets      kube.Secrets
	namespace    string
	fieldManager string
	// inlineMax is the largest encoded bundle kept in the index Secret
	// itself (InlineBytes; tests lower it to write chunks).
	inlineMax int

	mu    sync.Mutex
	known map[string]meta // app → its index as last written or read
	// loaded is set by a Load that read every index and chunk: from then
	// on an app the store does not know has no index, and chunks holds
	// every chunk there is, except for the apps in unsure.
	loaded bool
	// chunks maps an app's hash to the digest labels of its chunk Secrets.
	chunks map[string]map[string]bool
	// unsure holds the apps (by hash) whose Secrets may differ from what
	// the store knows (a write or delete failed part way); they are read
	// from the API server again, as before a Load.
	unsure map[string]bool
	// cleaning holds, per app, the removal of the bundle chunks a Save
	// left behind (closed when done): it runs after Save returns, off the
	// sync's path, and the app's next Save or Delete waits for it.
	cleaning map[string]chan struct{}
}

// cleanTimeout bounds the removal of old chunks after a Save.
const cleanTimeout = time.Minute

// New returns a store over the Secrets of namespace.
func New(dyn dynamic.Interface, namespace, fieldManager string) *Store {
	return &Store{secrets: kube.NewSecrets(dyn, namespace), namespace: namespace, fieldManager: fieldManager, inlineMax: InlineBytes, known: map[string]meta{}, cleaning: map[string]chan struct{}{}, chunks: map[string]map[string]bool{}, unsure: map[string]bool{}}
}

// remember records m as app's index (nil: unknown, read it next time).
func (s *Store) remember(app string, m *meta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m == nil {
		delete(s.known, app)
		return
	}
	s.known[app] = *m
}

// sure reports whether the store knows app's Secrets without reading them:
// after a Load, unless a write or delete of the app failed since.
func (s *Store) sure(app string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loaded && !s.unsure[appHash(app)]
}

// doubt marks app's Secrets as unknown (read them again).
func (s *Store) doubt(app string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unsure[appHash(app)] = true
}

// chunksOther reports whether app may have chunk Secrets of a digest other
// than keep ("": any): true unless the store is sure it has none.
func (s *Store) chunksOther(app, keep string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := appHash(app)
	if !s.loaded || s.unsure[h] {
		return true
	}
	for d := range s.chunks[h] {
		if keep == "" || d != digestLabel(keep) {
			return true
		}
	}
	return false
}

// setChunks records that app's chunk Secrets are those of the digests
// given (by label), once the store has written or deleted them.
func (s *Store) setChunks(app string, digestLabels ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := appHash(app)
	if len(digestLabels) == 0 {
		delete(s.chunks, h)
		return
	}
	m := map[string]bool{}
	for _, d := range digestLabels {
		m[d] = true
	}
	s.chunks[h] = m
}

type meta struct {
	App    string `json:"app"`
	Digest string `json:"digest"`
	// Chunks is the number of chunk Secrets holding the bundle; 0: the
	// bundle is in the index Secret itself (field bundle).
	Chunks  int  `json:"chunks"`
	Removed bool `json:"removed,omitempty"`
	// HooksDone is Record.HooksDone.
	HooksDone string `json:"hooksDone,omitempty"`
}

// Save writes rec: a bundle of at most InlineBytes (encoded) goes in the
// index Secret itself, so a new app's bundle and inventory cost one write;
// a larger one in chunk Secrets, written when the index does not already
// point at this digest, before the index. It returns once all are written: the
// chunks of other digests, listed meanwhile (they all predate this save,
// since the app's writes are serialised), are deleted after it returns,
// and the app's next Save or Delete first waits for that. A chunk that
// could not be deleted is listed and deleted by the next Save.
func (s *Store) Save(ctx context.Context, rec *Record) error {
	if err := s.settle(ctx, rec.App); err != nil {
		return err
	}
	raw, err := proto.Marshal(rec.Bundle)
	if err != nil {
		return fmt.Errorf("save app %s: encode bundle: %w", rec.App, err)
	}
	digest := rec.Bundle.GetDigest()
	chunks := s.chunksFor(len(raw))
	cur, err := s.readMeta(ctx, rec.App)
	if err != nil {
		return err
	}
	type listed struct {
		chunks []*corev1.Secret
		err    error
	}
	others := make(chan listed, 1)
	if s.chunksOther(rec.App, digest) {
		go func() {
			l, err := s.listChunks(ctx, rec.App)
			others <- listed{l, err}
		}()
	} else {
		others <- listed{} // none: nothing to list or delete
	}
	if chunks > 0 && (cur == nil || cur.Digest != digest || cur.Chunks != chunks) {
		for i := 0; i < chunks; i++ {
			end := min((i+1)*ChunkBytes, len(raw))
			part := raw[i*ChunkBytes : end]
			sec := s.secret(chunkName(rec.App, digest, i), rec.App,
				map[string]string{labelRecord: recordChunk, labelAppHash: appHash(rec.App), labelDigest: digestLabel(digest)},
				map[string][]byte{"part": part, "index": []byte(strconv.Itoa(i))})
			if err := s.secrets.Apply(ctx, sec, s.fieldManager); err != nil {
				s.doubt(rec.App)
				<-others
				return fmt.Errorf("save app %s: bundle chunk %d: %w", rec.App, i, err)
			}
		}
	}
	var inline []byte
	if chunks == 0 {
		inline = raw
	}
	if err := s.writeIndex(ctx, rec, meta{App: rec.App, Digest: digest, Chunks: chunks, Removed: rec.Removed, HooksDone: rec.HooksDone}, inline); err != nil {
		<-others
		return err
	}
	var kept []string // the chunks of this digest, once the others are gone
	if chunks > 0 {
		kept = []string{digestLabel(digest)}
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.cleaning[rec.App] = done
	s.mu.Unlock()
	go func() {
		defer close(done)
		l := <-others
		if l.err != nil {
			s.doubt(rec.App)
			return
		}
		if hasOthers(l.chunks, digest) {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanTimeout)
			defer cancel()
			if err := s.deleteListed(cctx, rec.App, digest, l.chunks); err != nil {
				s.doubt(rec.App) // left ones: the next Save's
				return
			}
		}
		s.setChunks(rec.App, kept...)
	}()
	return nil
}

// chunksFor is the number of chunk Secrets a bundle of size bytes
// (encoded) takes: 0 when it fits in the index.
func (s *Store) chunksFor(size int) int {
	if size <= s.inlineMax {
		return 0
	}
	return max((size+ChunkBytes-1)/ChunkBytes, 1)
}

// hasOthers reports whether list holds a chunk of a digest other than keep.
func hasOthers(list []*corev1.Secret, keep string) bool {
	for _, sec := range list {
		if sec.Labels[labelDigest] != digestLabel(keep) {
			return true
		}
	}
	return false
}

// settle waits until the removal of old chunks that app's last Save started
// is over.
func (s *Store) settle(ctx context.Context, app string) error {
	s.mu.Lock()
	ch := s.cleaning[app]
	s.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
	case <-ctx.Done():
		return fmt.Errorf("app %s: wait for the removal of old bundle chunks: %w", app, ctx.Err())
	}
	s.mu.Lock()
	if s.cleaning[app] == ch {
		delete(s.cleaning, app)
	}
	s.mu.Unlock()
	return nil
}

// Settle waits until every removal of old chunks started by Save is over.
func (s *Store) Settle(ctx context.Context) error {
	s.mu.Lock()
	apps := make([]string, 0, len(s.cleaning))
	for app := range s.cleaning {
		apps = append(apps, app)
	}
	s.mu.Unlock()
	for _, app := range apps {
		if err := s.settle(ctx, app); err != nil {
			return err
		}
	}
	return nil
}

// SaveInventory rewrites only the index of an app already saved.
func (s *Store) SaveInventory(ctx context.Context, rec *Record) error {
	m := meta{App: rec.App, Digest: rec.Bundle.GetDigest(), Removed: rec.Removed, HooksDone: rec.HooksDone}
	cur, err := s.readMeta(ctx, rec.App)
	if err != nil {
		return err
	}
	if cur == nil || cur.Digest != m.Digest {
		return s.Save(ctx, rec)
	}
	m.Chunks = cur.Chunks
	var inline []byte
	if m.Chunks == 0 {
		// The index holds the bundle: an apply without it would drop it.
		if inline, err = proto.Marshal(rec.Bundle); err != nil {
			return fmt.Errorf("save app %s: encode bundle: %w", rec.App, err)
		}
	}
	return s.writeIndex(ctx, rec, m, inline)
}

// writeIndex applies app's index Secret: m, the inventory and, when m has no
// chunks, the encoded bundle (inline).
func (s *Store) writeIndex(ctx context.Context, rec *Record, m meta, inline []byte) error {
	mj, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("save app %s: %w", rec.App, err)
	}
	inv, err := gzipJSON(rec.Inventory)
	if err != nil {
		return fmt.Errorf("save app %s: inventory: %w", rec.App, err)
	}
	data := map[string][]byte{"meta": mj, "inventory.json.gz": inv}
	if m.Chunks == 0 {
		data[fieldBundle] = inline
	}
	sec := s.secret(indexName(rec.App), rec.App,
		map[string]string{labelRecord: recordIndex, labelAppHash: appHash(rec.App)}, data)
	if err := s.secrets.Apply(ctx, sec, s.fieldManager); err != nil {
		s.remember(rec.App, nil) // written or not: read it next time
		s.doubt(rec.App)
		return fmt.Errorf("save app %s: index: %w", rec.App, err)
	}
	s.remember(rec.App, &m)
	return nil
}

// secret is the applied form of one stored Secret of app.
func (s *Store) secret(name, app string, labels map[string]string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.namespace, Labels: labels, Annotations: map[string]string{annoApp: app}},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// readMeta returns app's index as last written or read, or reads it (nil:
// there is none).
func (s *Store) readMeta(ctx context.Context, app string) (*meta, error) {
	s.mu.Lock()
	m, ok := s.known[app]
	s.mu.Unlock()
	if ok {
		return &m, nil
	}
	if s.sure(app) {
		return nil, nil // loaded, not written since: there is none
	}
	sec, err := s.secrets.Get(ctx, indexName(app))
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read app %s: %w", app, err)
	}
	if err := json.Unmarshal(sec.Data["meta"], &m); err != nil {
		return nil, fmt.Errorf("read app %s: secret %s field meta: %w", app, sec.Name, err)
	}
	s.remember(app, &m)
	return &m, nil
}

func (s *Store) listChunks(ctx context.Context, app string) ([]*corev1.Secret, error) {
	list, err := s.secrets.List(ctx, labels.Set{labelRecord: recordChunk, labelAppHash: appHash(app)}.String())
	if err != nil {
		return nil, fmt.Errorf("list bundle chunks of app %s: %w", app, err)
	}
	return list, nil
}

// deleteChunks deletes the app's chunks of every digest but keep ("" keeps
// none).
func (s *Store) deleteChunks(ctx context.Context, app, keep string) error {
	list, err := s.listChunks(ctx, app)
	if err != nil {
		return err
	}
	return s.deleteListed(ctx, app, keep, list)
}

// deleteListed deletes the chunks of list whose digest is not keep.
func (s *Store) deleteListed(ctx context.Context, app, keep string, list []*corev1.Secret) error {
	for _, sec := range list {
		if keep != "" && sec.Labels[labelDigest] == digestLabel(keep) {
			continue
		}
		if err := s.secrets.Delete(ctx, sec.Name); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete bundle chunk %s of app %s: %w", sec.Name, app, err)
		}
	}
	return nil
}

// Delete removes everything stored for app.
func (s *Store) Delete(ctx context.Context, app string) error {
	if err := s.settle(ctx, app); err != nil {
		return err
	}
	s.remember(app, nil)
	if err := s.secrets.Delete(ctx, indexName(app)); err != nil && !apierrors.IsNotFound(err) {
		s.doubt(app)
		return fmt.Errorf("delete app %s: %w", app, err)
	}
	if !s.chunksOther(app, "") {
		return nil
	}
	if err := s.deleteChunks(ctx, app, ""); err != nil {
		s.doubt(app)
		return err
	}
	s.setChunks(app)
	return nil
}

// Load reads every stored record. A record whose chunks are incomplete or
// corrupt is an error naming the app: the agent must not start enforcing a
// partial bundle.
func (s *Store) Load(ctx context.Context) ([]*Record, error) {
	idx, err := s.secrets.List(ctx, labels.Set{labelRecord: recordIndex}.String())
	if err != nil {
		return nil, fmt.Errorf("list app records in namespace %s: %w", s.namespace, err)
	}
	chunks, err := s.secrets.List(ctx, labels.Set{labelRecord: recordChunk}.String())
	if err != nil {
		return nil, fmt.Errorf("list bundle chunks in namespace %s: %w", s.namespace, err)
	}
	byName := map[string]*corev1.Secret{}
	byApp := map[string]map[string]bool{}
	for _, c := range chunks {
		byName[c.Name] = c
		h := c.Labels[labelAppHash]
		if byApp[h] == nil {
			byApp[h] = map[string]bool{}
		}
		byApp[h][c.Labels[labelDigest]] = true
	}
	var out []*Record
	for _, sec := range idx {
		var m meta
		if err := json.Unmarshal(sec.Data["meta"], &m); err != nil {
			return nil, fmt.Errorf("secret %s field meta: %w", sec.Name, err)
		}
		rec := &Record{App: m.App, Removed: m.Removed, HooksDone: m.HooksDone}
		if err := gunzipJSON(sec.Data["inventory.json.gz"], &rec.Inventory); err != nil {
			return nil, fmt.Errorf("app %s: secret %s field inventory.json.gz: %w", m.App, sec.Name, err)
		}
		raw := sec.Data[fieldBundle] // inline (no chunks)
		for i := 0; i < m.Chunks; i++ {
			c, ok := byName[chunkName(m.App, m.Digest, i)]
			if !ok {
				return nil, fmt.Errorf("app %s: bundle chunk %d of %d (%s) is missing", m.App, i, m.Chunks, chunkName(m.App, m.Digest, i))
			}
			raw = append(raw, c.Data["part"]...)
		}
		rec.Bundle = &apiv1alpha1.Bundle{}
		if err := proto.Unmarshal(raw, rec.Bundle); err != nil {
			return nil, fmt.Errorf("app %s: decode bundle: %w", m.App, err)
		}
		if rec.Bundle.GetDigest() != m.Digest {
			return nil, fmt.Errorf("app %s: stored bundle digest %s does not match index %s", m.App, rec.Bundle.GetDigest(), m.Digest)
		}
		s.remember(m.App, &m)
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].App < out[j].App })
	s.mu.Lock()
	s.loaded, s.chunks, s.unsure = true, byApp, map[string]bool{}
	s.mu.Unlock()
	return out, nil
}

func gzipJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// gzipWriters keeps gzip writers (BestSpeed) for reuse: a new one
// allocates its compressor's ~1 MiB of tables and windows, which was 14 %
// of the agent's CPU (allocation and the collector after it) when 1,000
// new apps each saved their bundle and inventory.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return zw
}}

func gunzipJSON(b []byte, v any) error {
	if len(b) == 0 {
		return nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}
