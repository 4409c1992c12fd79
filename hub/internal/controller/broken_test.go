//go:build !unit

package controller

import (
	"strings"
	"testing"
)

// TestBrokenDefinitionStandsAlone: a commit of definitions that breaks one
// app (an unknown field) and adds a good one: the good one takes effect,
// the broken one keeps its last good bundle on its cluster with the error
// on it, and a broken definition of a new app shows as that app with the
// error. Fixing the definition brings the app back.
func TestBrokenDefinitionStandsAlone(t *testing.T) {
	w := newWorld(t, map[string]map[string]string{"a": {"env": "prod"}})
	w.push(map[string]string{"web/cm.yaml": cmV1, "api/cm.yaml": strings.ReplaceAll(cmV1, "{name: web}", "{name: api}")})
	good := appYAML(w.repo.URL, "web", "env: prod")
	w.app("web", good)
	ctx := t.Context()
	w.c.ReconcileNow(ctx)
	webDigest := w.target("web", "a").Digest
	if webDigest == "" {
		t.Fatal("web has no bundle")
	}

	w.app("web", good+"  colour: blue\n")
	w.app("api", strings.ReplaceAll(appYAML(w.repo.URL, "api", "env: prod"), "{name: web}", "{name: api}"))
	w.app("new-broken", strings.ReplaceAll(good, "{name: web}", "{name: new-broken}")+"  sourcee: {}\n")
	w.c.ReconcileNow(ctx)

	if d := w.target("api", "a").Digest; d == "" || w.fl.DesiredOf("a")["api"].GetDigest() != d {
		t.Errorf("the good app added in the same change has no bundle: %q", d)
	}
	if got := w.fl.DesiredOf("a")["web"].GetDigest(); got != webDigest {
		t.Errorf("the broken app's bundle on a = %q, want its last good %q", got, webDigest)
	}
	byName := map[string]AppState{}
	for _, as := range w.c.Snapshot().Apps {
		byName[as.Name] = as
	}
	if as := byName["web"]; !as.Broken || !strings.Contains(as.Error, "colour") || len(as.Targets) != 1 {
		t.Errorf("web: broken %t, error %q, %d targets; want its error naming the field and its cluster kept", as.Broken, as.Error, len(as.Targets))
	}
	if as := byName["new-broken"]; !as.Broken || !strings.Contains(as.Error, "sourcee") {
		t.Errorf("new-broken: %+v; want an app with the error naming the field", as)
	}
	if n := len(w.c.Snapshot().Broken); n != 2 {
		t.Errorf("%d broken definitions in the snapshot, want 2", n)
	}

	w.app("web", good)
	w.c.ReconcileNow(ctx)
	if as := w.target("web", "a"); as.Digest != webDigest {
		t.Errorf("fixed web: digest %q, want %q", as.Digest, webDigest)
	}
	for _, as := range w.c.Snapshot().Apps {
		if as.Name == "web" && (as.Broken || as.Error != "") {
			t.Errorf("fixed web still broken: %q", as.Error)
		}
	}
}
