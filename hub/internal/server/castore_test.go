package server

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/hub/internal/pki"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// TestOpenStoreMovesTheCAKeyOut: a store of an earlier version holds the
// CA key; the first start moves it to the key file (mode 0600) and leaves
// no trace of it in the store file, free pages included. The CA stays the
// same.
func TestOpenStoreMovesTheCAKeyOut(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path, keyFile := filepath.Join(dir, "hub.db"), filepath.Join(dir, "ca.key")
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	old, err := store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.PutCA(ctx, ca.CertPEM(), ca.KeyPEM()); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	st, got, err := openStore(ctx, path, keyFile, false, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash() != ca.Hash() {
		t.Errorf("CA changed: %s, was %s", got.Hash(), ca.Hash())
	}
	if _, key, err := st.GetCA(ctx); err != nil || key != nil {
		t.Errorf("store still holds a CA key (%d bytes), %v", len(key), err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("PRIVATE KEY")) {
		t.Error("the store file still holds the CA key's PEM")
	}
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := os.ReadFile(keyFile)
	if err != nil || !bytes.Equal(b, ca.KeyPEM()) {
		t.Errorf("key file does not hold the CA key: %v", err)
	}

	// The next start reads the key from its file.
	st, again, err := openStore(ctx, path, keyFile, false, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if again.Hash() != ca.Hash() {
		t.Errorf("CA changed on the next start: %s, was %s", again.Hash(), ca.Hash())
	}
}
