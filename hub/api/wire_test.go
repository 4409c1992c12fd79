package api_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-cd/flotilla/hub/api"
)

var update = flag.Bool("update", false, "rewrite testdata/wire.golden")

// TestJSONNames pins the JSON of every wire type, empty and with every
// field set, against testdata/wire.golden: the CLI, the web UI and scripts
// read these names, so a renamed field or a lost omitempty fails here.
func TestJSONNames(t *testing.T) {
	types := []struct {
		name string
		v    any
	}{
		{"AppView", api.AppView{}}, {"AppClusterView", api.AppClusterView{}}, {"ObjectView", api.ObjectView{}},
		{"OperationView", api.OperationView{}}, {"Hook", api.Hook{}}, {"SyncRequest", api.SyncRequest{}},
		{"SyncResponse", api.SyncResponse{}}, {"DiffResponse", api.DiffResponse{}}, {"ClusterDiff", api.ClusterDiff{}},
		{"DefinitionsView", api.DefinitionsView{}}, {"BrokenView", api.BrokenView{}}, {"HistoryEntry", api.HistoryEntry{}},
		{"RollbackRequest", api.RollbackRequest{}}, {"RollbackResponse", api.RollbackResponse{}},
		{"RollbackTarget", api.RollbackTarget{}}, {"UnpinRequest", api.UnpinRequest{}}, {"UnpinResponse", api.UnpinResponse{}},
		{"AuditEntry", api.AuditEntry{}}, {"ClusterView", api.ClusterView{}}, {"AddClusterRequest", api.AddClusterRequest{}},
		{"JoinResponse", api.JoinResponse{}}, {"LabelRequest", api.LabelRequest{}}, {"TokenView", api.TokenView{}},
		{"CreateTokenRequest", api.CreateTokenRequest{}}, {"CreateTokenResponse", api.CreateTokenResponse{}},
		{"ListResponse[AppView]", api.ListResponse[api.AppView]{}}, {"Error", api.Error{}},
		{"WhoamiResponse", api.WhoamiResponse{}}, {"WebhookResponse", api.WebhookResponse{}},
		{"SSOInfo", api.SSOInfo{}}, {"CLILoginRequest", api.CLILoginRequest{}}, {"CLILoginResponse", api.CLILoginResponse{}},
		{"RolloutView", api.RolloutView{}}, {"RolloutEvent", api.RolloutEvent{}},
		{"OrphanedView", api.OrphanedView{}}, {"OrphanedRef", api.OrphanedRef{}}, {"Condition", api.Condition{}},
	}
	var b strings.Builder
	for _, tt := range types {
		v := reflect.New(reflect.TypeOf(tt.v)).Elem()
		empty, err := json.Marshal(v.Interface())
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		fill(v)
		full, err := json.Marshal(v.Interface())
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		b.WriteString(tt.name + " empty: " + string(empty) + "\n" + tt.name + " full: " + string(full) + "\n")
	}
	golden := filepath.Join("testdata", "wire.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("wire JSON changed (-golden +now); a client reads these names:\n%s", diff)
	}
}

// fill sets every field reachable from v to a non-zero value.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("s")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(3)
	case reflect.Uint64:
		v.SetUint(3)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Unix(1000, 0).UTC()))
			return
		}
		for i := range v.NumField() {
			fill(v.Field(i))
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem())
		v.Set(p)
	case reflect.Interface:
		v.Set(reflect.ValueOf(map[string]any{"x": 1}))
	}
}
