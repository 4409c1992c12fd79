package kubestore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Secrets of the Kubernetes store.
const (
	// CASecretName holds the hub CA: tls.crt and tls.key.
	CASecretName      = "flotilla-hub-ca"
	joinSecretPrefix  = "flotilla-join-"
	tokenSecretPrefix = "flotilla-apitoken-"
	keyJoinToken      = "token"
	keyTokenHash      = "hash"
)

func (k *Store) secrets() secretsClient { return k.core.CoreV1().Secrets(k.ns) }

type secretsClient interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Secret, error)
	Create(ctx context.Context, s *corev1.Secret, opts metav1.CreateOptions) (*corev1.Secret, error)
	Update(ctx context.Context, s *corev1.Secret, opts metav1.UpdateOptions) (*corev1.Secret, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.SecretList, error)
}

func newSecret(name string, lbl map[string]string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbl}, Type: corev1.SecretTypeOpaque, Data: data}
}

// CreateJoinToken implements Store.
func (k *Store) CreateJoinToken(ctx context.Context, cluster string, ttl time.Duration, now time.Time) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("create join token for cluster %s: ttl %s: %w", cluster, ttl, store.ErrInvalid)
	}
	raw, err := store.RandomString(store.TokenBytes)
	if err != nil {
		return "", fmt.Errorf("create join token for cluster %s: %w", cluster, err)
	}
	tok := store.JoinToken{Cluster: cluster, Hash: store.HashToken(raw), ExpiresAt: now.Add(ttl).UTC()}
	err = k.check(ctx)
	if err == nil {
		_, err = k.GetCluster(ctx, cluster)
	}
	if err == nil {
		err = k.putJoinToken(ctx, tok)
	}
	if err != nil {
		return "", fmt.Errorf("create join token for cluster %s: %w", cluster, err)
	}
	return raw, nil
}

// putJoinToken creates or replaces the cluster's join token Secret.
func (k *Store) putJoinToken(ctx context.Context, tok store.JoinToken) error {
	data, err := json.Marshal(tok)
	if err != nil {
		return err
	}
	name := objectName(joinSecretPrefix, tok.Cluster)
	return onConflict(ctx, func() error {
		cur, err := k.secrets().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = k.secrets().Create(ctx, newSecret(name, labels("join-token", labelCluster, tok.Cluster), map[string][]byte{keyJoinToken: data}), metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		cur.Data = map[string][]byte{keyJoinToken: data}
		_, err = k.secrets().Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

// getJoinToken reads the cluster's join token and the Secret holding it.
func (k *Store) getJoinToken(ctx context.Context, cluster string) (store.JoinToken, *corev1.Secret, error) {
	s, err := k.secrets().Get(ctx, objectName(joinSecretPrefix, cluster), metav1.GetOptions{})
	if err != nil {
		return store.JoinToken{}, nil, apiErr(err)
	}
	var tok store.JoinToken
	if err := json.Unmarshal(s.Data[keyJoinToken], &tok); err != nil {
		return store.JoinToken{}, nil, fmt.Errorf("decode join token: %w", err)
	}
	if tok.Cluster != cluster {
		return store.JoinToken{}, nil, store.ErrNotFound
	}
	return tok, s, nil
}

// ConsumeJoinToken implements Store. Of concurrent calls with the same
// token one wins: the Secret is updated from the resourceVersion that was
// checked, so a second writer conflicts, reads again and finds it used.
func (k *Store) ConsumeJoinToken(ctx context.Context, cluster, raw string, now time.Time) error {
	err := k.check(ctx)
	if err == nil {
		err = k.consumeJoinToken(ctx, cluster, raw, now)
	}
	if err != nil {
		return fmt.Errorf("consume join token of cluster %s: %w", cluster, err)
	}
	return nil
}

func (k *Store) consumeJoinToken(ctx context.Context, cluster, raw string, now time.Time) error {
	return onConflict(ctx, func() error {
		tok, s, err := k.getJoinToken(ctx, cluster)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		found := err == nil
		if !found {
			tok.Hash = store.DummyHash
		}
		if !store.HashMatches(tok.Hash, raw) || !found {
			return store.ErrTokenInvalid
		}
		if !tok.UsedAt.IsZero() {
			return store.ErrTokenUsed
		}
		if !now.Before(tok.ExpiresAt) {
			return store.ErrTokenExpired
		}
		tok.UsedAt = now.UTC()
		data, err := json.Marshal(tok)
		if err != nil {
			return err
		}
		s.Data[keyJoinToken] = data
		_, err = k.secrets().Update(ctx, s, metav1.UpdateOptions{})
		return err
	})
}

// EnrollCluster implements Store. The token is consumed first (the one
// compare-and-swap that decides between concurrent enrolments), then the
// cluster updated; when fn or that update fails the token is made unused
// again. Unlike Bolt's, fn may run more than once.
func (k *Store) EnrollCluster(ctx context.Context, cluster, raw string, now time.Time, fn func(*store.Cluster) error) error {
	err := k.check(ctx)
	if err == nil {
		err = k.consumeJoinToken(ctx, cluster, raw, now)
	}
	if err == nil {
		if err = k.updateCluster(ctx, cluster, fn); err != nil {
			if rerr := k.unconsume(context.WithoutCancel(ctx), cluster, now); rerr != nil {
				err = errors.Join(err, fmt.Errorf("give the join token back: %w", rerr))
			}
		}
	}
	if err != nil {
		return fmt.Errorf("enroll cluster %s: %w", cluster, err)
	}
	return nil
}

// unconsume marks the token consumed at usedAt unused again.
func (k *Store) unconsume(ctx context.Context, cluster string, usedAt time.Time) error {
	return onConflict(ctx, func() error {
		tok, s, err := k.getJoinToken(ctx, cluster)
		if err != nil || !tok.UsedAt.Equal(usedAt) {
			return err
		}
		tok.UsedAt = time.Time{}
		data, err := json.Marshal(tok)
		if err != nil {
			return err
		}
		s.Data[keyJoinToken] = data
		_, err = k.secrets().Update(ctx, s, metav1.UpdateOptions{})
		return err
	})
}

// GetJoinToken implements Store.
func (k *Store) GetJoinToken(ctx context.Context, cluster string) (store.JoinToken, error) {
	err := k.check(ctx)
	var tok store.JoinToken
	if err == nil {
		tok, _, err = k.getJoinToken(ctx, cluster)
	}
	if err != nil {
		return store.JoinToken{}, fmt.Errorf("get join token of cluster %s: %w", cluster, err)
	}
	return tok, nil
}

// GetCA implements Store.
func (k *Store) GetCA(ctx context.Context) (certPEM, keyPEM []byte, err error) {
	if err := k.check(ctx); err != nil {
		return nil, nil, fmt.Errorf("get ca: %w", err)
	}
	s, err := k.secrets().Get(ctx, CASecretName, metav1.GetOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("get ca: %w", apiErr(err))
	}
	if len(s.Data[corev1.TLSCertKey]) == 0 {
		return nil, nil, fmt.Errorf("get ca: %w", store.ErrNotFound)
	}
	if key := s.Data[corev1.TLSPrivateKeyKey]; len(key) > 0 {
		keyPEM = key
	}
	return s.Data[corev1.TLSCertKey], keyPEM, nil
}

// PutCA implements Store.
func (k *Store) PutCA(ctx context.Context, certPEM, keyPEM []byte) error {
	if len(certPEM) == 0 {
		return fmt.Errorf("put ca: empty certificate: %w", store.ErrInvalid)
	}
	if err := k.check(ctx); err != nil {
		return fmt.Errorf("put ca: %w", err)
	}
	data := map[string][]byte{corev1.TLSCertKey: certPEM}
	if len(keyPEM) > 0 {
		data[corev1.TLSPrivateKeyKey] = keyPEM
	}
	err := onConflict(ctx, func() error {
		cur, err := k.secrets().Get(ctx, CASecretName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = k.secrets().Create(ctx, newSecret(CASecretName, labels("ca"), data), metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		cur.Data = data
		_, err = k.secrets().Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("put ca: %w", err)
	}
	return nil
}

// CreateCA stores the CA certificate and key unless a CA is stored
// already (ErrConflict): of hubs starting at once, one makes the CA and the
// others load it.
func (k *Store) CreateCA(ctx context.Context, certPEM, keyPEM []byte) error {
	if err := k.check(ctx); err != nil {
		return fmt.Errorf("create ca: %w", err)
	}
	_, err := k.secrets().Create(ctx, newSecret(CASecretName, labels("ca"),
		map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}), metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create ca: %w", apiErr(err))
	}
	return nil
}

// CreateAPIToken implements Store.
func (k *Store) CreateAPIToken(ctx context.Context, name, role string, now time.Time) (string, store.APIToken, error) {
	if role != store.RoleAdmin && role != store.RoleReadOnly {
		return "", store.APIToken{}, fmt.Errorf("create api token %s: role %q: %w", name, role, store.ErrInvalid)
	}
	return k.IssueAPIToken(ctx, store.APIToken{Name: name, Role: role}, now)
}

// IssueAPIToken implements Store. The metadata is an APIToken object
// named by the ID, the hash a Secret of the same ID. Names of KindToken
// tokens are unique: after creating its token an issuer lists the tokens of
// that name, and of two issued at once the one with the earlier (CreatedAt,
// ID) stays, the other is removed again and reported as ErrConflict.
func (k *Store) IssueAPIToken(ctx context.Context, spec store.APIToken, now time.Time) (string, store.APIToken, error) {
	name := spec.Name
	if err := store.CheckName("api token", name); err != nil {
		return "", store.APIToken{}, err
	}
	if err := validTokenSpec(spec); err != nil {
		return "", store.APIToken{}, err
	}
	if err := k.check(ctx); err != nil {
		return "", store.APIToken{}, fmt.Errorf("create api token %s: %w", name, err)
	}
	idb := make([]byte, store.APIIDBytes)
	if _, err := rand.Read(idb); err != nil {
		return "", store.APIToken{}, fmt.Errorf("create api token %s: read random: %w", name, err)
	}
	secret, err := store.RandomString(store.TokenBytes)
	if err != nil {
		return "", store.APIToken{}, fmt.Errorf("create api token %s: %w", name, err)
	}
	id := hex.EncodeToString(idb)
	raw := store.APITokenPrefix + id + "_" + secret
	tok := spec
	tok.ID, tok.Hash, tok.CreatedAt = id, store.HashToken(raw), now.UTC()
	if !tok.ExpiresAt.IsZero() {
		tok.ExpiresAt = tok.ExpiresAt.UTC()
	}
	if tok.Kind == store.KindToken {
		if others, err := k.tokensNamed(ctx, name); err != nil {
			return "", store.APIToken{}, fmt.Errorf("create api token %s: %w", name, err)
		} else if len(others) > 0 {
			return "", store.APIToken{}, fmt.Errorf("create api token %s: %w", name, store.ErrConflict)
		}
	}
	if err := k.ImportAPIToken(ctx, tok); err != nil {
		return "", store.APIToken{}, fmt.Errorf("create api token %s: %w", name, err)
	}
	if tok.Kind == store.KindToken {
		others, err := k.tokensNamed(ctx, name)
		if err == nil && len(others) > 0 && !tokenBefore(tok, others[0]) && others[0].ID != tok.ID {
			err = store.ErrConflict
		}
		if err != nil {
			_ = k.deleteAPIToken(context.WithoutCancel(ctx), id)
			return "", store.APIToken{}, fmt.Errorf("create api token %s: %w", name, err)
		}
	}
	return raw, tok, nil
}

func validTokenSpec(spec store.APIToken) error {
	name := spec.Name
	switch {
	case spec.Role != store.RoleAdmin && spec.Role != store.RoleReadOnly && spec.Role != store.RoleDeployer:
		return fmt.Errorf("create api token %s: role %q: %w", name, spec.Role, store.ErrInvalid)
	case spec.Role == store.RoleDeployer && len(spec.Projects) == 0:
		return fmt.Errorf("create api token %s: role %s needs a project: %w", name, spec.Role, store.ErrInvalid)
	case spec.Role != store.RoleDeployer && len(spec.Projects) != 0:
		return fmt.Errorf("create api token %s: role %s takes no project: %w", name, spec.Role, store.ErrInvalid)
	case spec.Kind != store.KindToken && spec.Kind != store.KindWebSession && spec.Kind != store.KindCLISession:
		return fmt.Errorf("create api token %s: kind %q: %w", name, spec.Kind, store.ErrInvalid)
	}
	return nil
}

func tokenBefore(a, b store.APIToken) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt)
	}
	return a.ID < b.ID
}

// tokensNamed lists the KindToken tokens named name, the oldest first.
func (k *Store) tokensNamed(ctx context.Context, name string) ([]store.APIToken, error) {
	var out []store.APIToken
	err := k.listSpecs(ctx, resToken, labelName+"="+labelValue(name), func(o *unstructured.Unstructured) error {
		var t store.APIToken
		if err := getSpec(o, &t); err != nil {
			return err
		}
		if t.Kind == store.KindToken && t.Name == name {
			out = append(out, t)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return tokenBefore(out[i], out[j]) })
	return out, err
}

// ImportAPIToken stores tok as it is (ID, hash and times kept): the hash
// Secret first, then the metadata that makes it valid.
func (k *Store) ImportAPIToken(ctx context.Context, tok store.APIToken) error {
	if err := k.check(ctx); err != nil {
		return err
	}
	lbl := labels("api-token", labelName, tok.Name)
	_, err := k.secrets().Create(ctx, newSecret(tokenSecretPrefix+tok.ID, lbl, map[string][]byte{keyTokenHash: []byte(tok.Hash)}), metav1.CreateOptions{})
	if err != nil {
		return apiErr(err)
	}
	meta := tok
	meta.Hash = ""
	o, err := newObject(resToken, tok.ID, lbl, meta)
	if err == nil {
		_, err = k.res(resToken).Create(ctx, o, metav1.CreateOptions{})
	}
	return apiErr(err)
}

// LookupAPIToken implements Store.
func (k *Store) LookupAPIToken(ctx context.Context, raw string) (store.APIToken, error) {
	id, _, ok := strings.Cut(strings.TrimPrefix(raw, store.APITokenPrefix), "_")
	if !strings.HasPrefix(raw, store.APITokenPrefix) || !ok || len(id) != 2*store.APIIDBytes {
		return store.APIToken{}, fmt.Errorf("lookup api token: %w", store.ErrTokenInvalid)
	}
	if err := k.check(ctx); err != nil {
		return store.APIToken{}, fmt.Errorf("lookup api token %s: %w", id, err)
	}
	tok := store.APIToken{Hash: store.DummyHash}
	_, err := k.get(ctx, resToken, id, &tok)
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.APIToken{}, fmt.Errorf("lookup api token %s: %w", id, err)
	}
	if found {
		s, err := k.secrets().Get(ctx, tokenSecretPrefix+id, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			found = false
		case err != nil:
			return store.APIToken{}, fmt.Errorf("lookup api token %s: %w", id, err)
		default:
			tok.Hash = string(s.Data[keyTokenHash])
		}
	}
	if !store.HashMatches(tok.Hash, raw) || !found || tok.ID != id {
		return store.APIToken{}, fmt.Errorf("lookup api token %s: %w", id, store.ErrTokenInvalid)
	}
	return tok, nil
}

// ListAPITokens implements Store.
func (k *Store) ListAPITokens(ctx context.Context, p store.Page) ([]store.APIToken, string, error) {
	if err := k.check(ctx); err != nil {
		return nil, "", fmt.Errorf("list api tokens: %w", err)
	}
	hashes := map[string]string{}
	sl, err := k.secrets().List(ctx, metav1.ListOptions{LabelSelector: labelRecord + "=api-token"})
	if err != nil {
		return nil, "", fmt.Errorf("list api tokens: %w", err)
	}
	for _, s := range sl.Items {
		hashes[strings.TrimPrefix(s.Name, tokenSecretPrefix)] = string(s.Data[keyTokenHash])
	}
	var all []store.APIToken
	err = k.listSpecs(ctx, resToken, "", func(o *unstructured.Unstructured) error {
		var t store.APIToken
		if err := getSpec(o, &t); err != nil {
			return err
		}
		if h, ok := hashes[t.ID]; ok {
			t.Hash = h
			all = append(all, t)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list api tokens: %w", err)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	out, next, err := pageByKey(all, p, func(t store.APIToken) string { return t.ID })
	if err != nil {
		return nil, "", fmt.Errorf("list api tokens: %w", err)
	}
	return out, next, nil
}

// DeleteAPIToken implements Store.
func (k *Store) DeleteAPIToken(ctx context.Context, id string) error {
	err := k.check(ctx)
	if err == nil {
		err = k.deleteAPIToken(ctx, id)
	}
	if err != nil {
		return fmt.Errorf("delete api token %s: %w", id, err)
	}
	return nil
}

// deleteAPIToken removes the metadata first (the token stops working) and
// then the hash.
func (k *Store) deleteAPIToken(ctx context.Context, id string) error {
	if err := k.del(ctx, resToken, id); err != nil {
		return err
	}
	if err := k.secrets().Delete(ctx, tokenSecretPrefix+id, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// InitialAdminSecret holds the first admin token of a Kubernetes store
// (key "token"), as Argo CD's argocd-initial-admin-secret: read it once,
// keep the token elsewhere, delete the Secret.
const InitialAdminSecret = "flotilla-hub-initial-admin"

// PutInitialAdminToken writes the first admin token to InitialAdminSecret.
func (k *Store) PutInitialAdminToken(ctx context.Context, raw string) error {
	_, err := k.secrets().Create(ctx, newSecret(InitialAdminSecret, labels("initial-admin"), map[string][]byte{"token": []byte(raw)}), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("write %s: %w", InitialAdminSecret, err)
	}
	return nil
}

// ImportJoinToken implements Importer.
func (k *Store) ImportJoinToken(ctx context.Context, tok store.JoinToken) error {
	if err := k.check(ctx); err != nil {
		return err
	}
	if err := k.putJoinToken(ctx, tok); err != nil {
		return fmt.Errorf("import join token of cluster %s: %w", tok.Cluster, err)
	}
	return nil
}
