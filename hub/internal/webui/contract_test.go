package webui_test

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// uiReads matches the UI's reads of API answers: app.js names an app a, a
// cluster entry or cluster c, an object o, a history entry h or entry, a
// sync or rollback answer r, a rollback target t, a list page page or
// history, an error body data, a resource tree t and its nodes n, a
// rollout ro and its steps st.
var uiReads = regexp.MustCompile(`\b(?:a|c|o|h|r|t|n|ro|st|entry|page|history|data)\.([a-z][A-Za-z]*)\b`)

// jsBuiltins are the methods and properties of strings, arrays and objects
// the same names also reach.
var jsBuiltins = map[string]bool{"length": true, "map": true, "slice": true, "join": true, "concat": true,
	"startsWith": true, "includes": true, "split": true, "trim": true, "find": true, "filter": true}

// TestUIReadsWireNames: every field the web UI reads from an API answer is
// a JSON name of hub/api's wire types, so that renaming one there without
// the UI fails here rather than in a browser.
func TestUIReadsWireNames(t *testing.T) {
	js, err := os.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, v := range []any{
		api.ListResponse[api.AppView]{}, api.ClusterView{}, api.HistoryEntry{}, api.SyncResponse{},
		api.RollbackResponse{}, api.UnpinResponse{}, api.Error{}, api.WhoamiResponse{}, api.SSOInfo{}, api.ResourcesResponse{},
		api.RolloutView{},
	} {
		jsonNames(reflect.TypeOf(v), names)
	}
	var unknown []string
	seen := 0
	for _, m := range uiReads.FindAllStringSubmatch(string(js), -1) {
		if jsBuiltins[m[1]] {
			continue
		}
		seen++
		if !names[m[1]] {
			unknown = append(unknown, m[0])
		}
	}
	if seen < 30 {
		t.Fatalf("found only %d reads of API fields in app.js; the pattern no longer matches the UI", seen)
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		t.Errorf("app.js reads fields that no hub/api type has: %v", unknown)
	}
}

// jsonNames adds the JSON names of t's fields, and of the structs they
// hold, to names.
func jsonNames(t reflect.Type, names map[string]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t.PkgPath() != reflect.TypeFor[api.AppView]().PkgPath() {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			jsonNames(f.Type, names)
			continue
		}
		if name != "" && name != "-" {
			names[name] = true
		}
		jsonNames(f.Type, names)
	}
}
