package identity

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flotilla-cd/flotilla/agent/internal/kube"
)

// Store keeps the identity across restarts.
type Store interface {
	// Load returns the stored identity, or ErrNotFound.
	Load(ctx context.Context) (*Identity, error)
	// Save replaces the stored identity.
	Save(ctx context.Context, id *Identity) error
}

var (
	_ Store = (*DirStore)(nil)
	_ Store = (*SecretStore)(nil)
)

// Keys of the identity files and Secret data.
const (
	keyCluster = "cluster"
	keyKey     = "tls.key"
	keyCert    = "tls.crt"
	keyCA      = "ca.crt"
)

// DirStore keeps the identity as files in a folder (mode 0600).
type DirStore struct{ Dir string }

// Load implements Store.
func (s DirStore) Load(_ context.Context) (*Identity, error) {
	read := func(n string) ([]byte, error) { return os.ReadFile(filepath.Join(s.Dir, n)) }
	cl, err := read(keyCluster)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("identity in %s: %w", s.Dir, err)
	}
	id := &Identity{Cluster: string(cl)}
	for n, dst := range map[string]*[]byte{keyKey: &id.KeyPEM, keyCert: &id.CertPEM, keyCA: &id.CAPEM} {
		if *dst, err = read(n); err != nil {
			return nil, fmt.Errorf("identity in %s: %w", s.Dir, err)
		}
	}
	return id.certified("identity in " + s.Dir)
}

// Save implements Store. Files are replaced atomically, the cluster name last.
func (s DirStore) Save(_ context.Context, id *Identity) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("identity dir %s: %w", s.Dir, err)
	}
	for _, f := range []struct {
		n string
		b []byte
	}{{keyKey, id.KeyPEM}, {keyCert, id.CertPEM}, {keyCA, id.CAPEM}, {keyCluster, []byte(id.Cluster)}} {
		p := filepath.Join(s.Dir, f.n)
		if err := os.WriteFile(p+".tmp", f.b, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}

// SecretStore keeps the identity in a Secret of type kubernetes.io/tls.
type SecretStore struct {
	Secrets   kube.Secrets // of Namespace
	Namespace string
	Name      string
}

// Load implements Store.
func (s SecretStore) Load(ctx context.Context) (*Identity, error) {
	sec, err := s.Secrets.Get(ctx, s.Name)
	if apierrors.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("identity Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	if len(sec.Data[keyCert]) == 0 || len(sec.Data[keyKey]) == 0 {
		return nil, ErrNotFound
	}
	id := &Identity{Cluster: string(sec.Data[keyCluster]), KeyPEM: sec.Data[keyKey], CertPEM: sec.Data[keyCert], CAPEM: sec.Data[keyCA]}
	return id.certified(fmt.Sprintf("identity Secret %s/%s", s.Namespace, s.Name))
}

// Save implements Store.
func (s SecretStore) Save(ctx context.Context, id *Identity) error {
	data := map[string][]byte{keyCluster: []byte(id.Cluster), keyKey: id.KeyPEM, keyCert: id.CertPEM, keyCA: id.CAPEM}
	sec, err := s.Secrets.Get(ctx, s.Name)
	if apierrors.IsNotFound(err) {
		err = s.Secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, Labels: map[string]string{"app.kubernetes.io/part-of": "flotilla"}},
			Type:       corev1.SecretTypeTLS,
			Data:       data,
		}, "flotilla-agent")
	} else if err == nil {
		sec.Data = data
		err = s.Secrets.Update(ctx, sec, "flotilla-agent")
	}
	if err != nil {
		return fmt.Errorf("identity Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return nil
}
