//go:build !unit

package security

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// Finding 5: a read-only token read live Secrets through `app diff`: the
// values of the app's own Secrets and the whole of an object the app does
// not own. Values are masked on the agent, before the diff leaves the
// cluster; an object not owned by the app is named, not shown.
func TestHTTPDiffMasksSecrets(t *testing.T) {
	t.Parallel()
	const (
		gitValue     = "git-s3cret-value"
		editedValue  = "edited-s3cret-value"
		unownedValue = "unowned-s3cret-value"
	)
	_, repo := gitRepo(t, "secrets")
	secretYAML := func(name, value string) []byte {
		return fmt.Appendf(nil, "apiVersion: v1\nkind: Secret\nmetadata: {name: %s}\ndata: {password: %s}\n",
			name, base64.StdEncoding.EncodeToString([]byte(value)))
	}
	if err := repo.Write(map[string][]byte{
		"db/creds.yaml":   secretYAML("creds", gitValue),
		"db/unowned.yaml": secretYAML("unowned", gitValue),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CommitAndPush("secrets"); err != nil {
		t.Fatal(err)
	}
	kc := startCluster(t, "vault")
	cs := clientset(t, kc)
	// Someone else's Secret, already in the cluster under a name the app's
	// manifests also use.
	if _, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-db"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Secrets("team-db").Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "unowned"}, Data: map[string][]byte{"password": []byte(unownedValue)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	apps := filepath.Join(t.TempDir(), "apps")
	if err := os.MkdirAll(apps, 0o755); err != nil {
		t.Fatal(err)
	}
	// No automated sync: the agent applies nothing until asked.
	app := strings.Replace(application("db", repo.URL, "db", "team-db", "vault"), "    automated: {prune: true}\n", "", 1)
	if err := os.WriteFile(filepath.Join(apps, "db.yaml"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	h := startHub(t, apps, plainHTTPFlags()...)
	startAgent(t, h, "vault", kc)
	var tok api.CreateTokenResponse
	if err := h.DoJSON(t.Context(), "POST", "/api/v1/tokens", api.CreateTokenRequest{Name: "viewer", Role: api.RoleReadOnly}, &tok); err != nil {
		t.Fatal(err)
	}
	diff := func() string {
		t.Helper()
		var body string
		eventually(t, 2*time.Minute, "a diff from the agent", func() error {
			req, _ := http.NewRequestWithContext(t.Context(), "GET", h.HTTPURL+"/api/v1/apps/db/diff", nil)
			req.Header.Set("Authorization", "Bearer "+tok.Token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var got struct {
				Clusters []struct {
					OK bool `json:"ok"`
				} `json:"clusters"`
			}
			if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &got) != nil || len(got.Clusters) == 0 || !got.Clusters[0].OK {
				return fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
			}
			body = string(b)
			return nil
		})
		for _, v := range []string{gitValue, editedValue, unownedValue} {
			for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v))} {
				if strings.Contains(body, form) {
					t.Errorf("a read-only token's diff shows a Secret value (%q):\n%s", v, body)
				}
			}
		}
		return body
	}

	// Before any sync: creds would be created, unowned is someone else's.
	d := diff()
	if !strings.Contains(d, "exists, not managed by this app") {
		t.Errorf("diff does not say the unowned Secret is not managed by the app:\n%s", d)
	}

	// Synced, then edited out of band: the key shows as changed, masked.
	if _, err := h.CLI(t.Context(), "app", "sync", "db"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "creds applied", func() error {
		_, err := cs.CoreV1().Secrets("team-db").Get(t.Context(), "creds", metav1.GetOptions{})
		return err
	})
	s, err := cs.CoreV1().Secrets("team-db").Get(t.Context(), "creds", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Data["password"] = []byte(editedValue)
	if _, err := cs.CoreV1().Secrets("team-db").Update(t.Context(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the edit shows in the diff", func() error {
		if d := diff(); !strings.Contains(d, "+  password: +++++++++") {
			return fmt.Errorf("no masked change of password in:\n%s", d)
		}
		return nil
	})
}
