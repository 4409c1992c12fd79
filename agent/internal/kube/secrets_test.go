//go:build !unit

package kube

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
)

var dyn dynamic.Interface

func TestMain(m *testing.M) {
	if testenv.UnitOnly() {
		os.Exit(m.Run())
	}
	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kube integration tests:", err)
		os.Exit(1)
	}
	dyn = dynamic.NewForConfigOrDie(env.Config)
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func TestNamespace(t *testing.T) {
	testenv.Need(t, dyn != nil)
	ctx := context.Background()
	if _, err := GetNamespace(ctx, dyn, "kube-ns-a"); !apierrors.IsNotFound(err) {
		t.Fatalf("GetNamespace of a missing namespace: %v, want NotFound", err)
	}
	if err := CreateNamespace(ctx, dyn, "kube-ns-a", "test"); err != nil {
		t.Fatal(err)
	}
	ns, err := GetNamespace(ctx, dyn, "kube-ns-a")
	if err != nil {
		t.Fatal(err)
	}
	if ns.Name != "kube-ns-a" {
		t.Errorf("name %q", ns.Name)
	}
	if err := CreateNamespace(ctx, dyn, "kube-ns-a", "test"); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create: %v, want AlreadyExists", err)
	}
}

func TestSecrets(t *testing.T) {
	testenv.Need(t, dyn != nil)
	ctx := context.Background()
	if err := CreateNamespace(ctx, dyn, "kube-secrets", "test"); err != nil {
		t.Fatal(err)
	}
	s := NewSecrets(dyn, "kube-secrets")
	if _, err := s.Get(ctx, "a"); !apierrors.IsNotFound(err) {
		t.Fatalf("Get of a missing Secret: %v, want NotFound", err)
	}
	binary := []byte{0, 1, 2, 255}
	err := s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "kube-secrets", Labels: map[string]string{"role": "x"}},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"k": binary},
	}, "test")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]byte{"k": binary}, got.Data); diff != "" {
		t.Errorf("data after create (-want +got):\n%s", diff)
	}

	got.Data = map[string][]byte{"k": []byte("v2")}
	if err := s.Update(ctx, got, "test"); err != nil {
		t.Fatal(err)
	}
	// A stale copy (old resourceVersion) must not overwrite the update.
	got.Data = map[string][]byte{"k": []byte("lost")}
	if err := s.Update(ctx, got, "test"); !apierrors.IsConflict(err) {
		t.Errorf("update from a stale copy: %v, want Conflict", err)
	}

	err = s.Apply(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "kube-secrets", Labels: map[string]string{"role": "x"}},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"k": []byte("applied")},
	}, "test")
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx, "role=x")
	if err != nil {
		t.Fatal(err)
	}
	data := map[string]string{}
	for _, sec := range list {
		data[sec.Name] = string(sec.Data["k"])
	}
	if diff := cmp.Diff(map[string]string{"a": "v2", "b": "applied"}, data); diff != "" {
		t.Errorf("listed data (-want +got):\n%s", diff)
	}

	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a"); !apierrors.IsNotFound(err) {
		t.Errorf("Get after Delete: %v, want NotFound", err)
	}
}
