package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/httpapi/apitest"
)

// get returns the raw body of an admin GET.
func get(t *testing.T, h *apitest.Hub, path string) []byte {
	t.Helper()
	req, err := http.NewRequest("GET", h.Server.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.AdminToken)
	resp, err := h.Server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, data)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: Content-Type %q", path, ct)
	}
	return data
}

// Answers are compact JSON (one line) unless ?pretty asks for indented
// JSON; both carry the same value, and the error answers too.
func TestJSONCompactUnlessPretty(t *testing.T) {
	h := apitest.New(t, apitest.Options{})
	for _, path := range []string{"/api/v1/apps", "/api/v1/apps/guestbook", "/api/v1/clusters", "/api/v1/whoami"} {
		compact := get(t, h, path)
		if n := bytes.Count(compact, []byte("\n")); n != 1 || !bytes.HasSuffix(compact, []byte("\n")) {
			t.Errorf("GET %s: %d newlines, want one at the end:\n%s", path, n, compact)
		}
		var want bytes.Buffer
		if err := json.Indent(&want, bytes.TrimSpace(compact), "", "  "); err != nil {
			t.Fatalf("GET %s: not JSON: %v", path, err)
		}
		want.WriteByte('\n')
		for _, q := range []string{"?pretty", "?pretty=true", "?pretty=1"} {
			if got := get(t, h, path+q); !bytes.Equal(got, want.Bytes()) {
				t.Errorf("GET %s%s:\n%s\nwant the compact answer indented:\n%s", path, q, got, want.Bytes())
			}
		}
		if got := get(t, h, path+"?pretty=false"); !bytes.Equal(got, compact) {
			t.Errorf("GET %s?pretty=false is not the compact answer:\n%s", path, got)
		}
	}
	// Other query parameters still apply next to pretty.
	var page api.ListResponse[api.AppView]
	if err := json.Unmarshal(get(t, h, "/api/v1/apps?limit=1&pretty"), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Next == "" {
		t.Errorf("?limit=1&pretty: %d items, next %q", len(page.Items), page.Next)
	}
}

// GET /api/v1/apps/{name} shows the app as the list does, plus its spec
// and objects (it builds that one app's view only).
func TestAppViewMatchesList(t *testing.T) {
	h := apitest.New(t, apitest.Options{})
	var list api.ListResponse[api.AppView]
	if code := call(t, h, h.AdminToken, "GET", "/api/v1/apps?limit=1000", nil, &list); code != 200 {
		t.Fatalf("list: %d", code)
	}
	if len(list.Items) < 2 {
		t.Fatalf("list: %d apps", len(list.Items))
	}
	for _, want := range list.Items {
		got := appView(t, h, want.Name)
		if got.Spec == nil {
			t.Errorf("%s: no spec", want.Name)
		}
		got.Spec = nil
		for i := range got.Clusters {
			got.Clusters[i].Objects = nil
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: GET differs from the list (-list +get):\n%s", want.Name, d)
		}
	}
	if code := call(t, h, h.AdminToken, "GET", "/api/v1/apps/nope", nil, nil); code != 404 {
		t.Errorf("unknown app: %d, want 404", code)
	}
}
