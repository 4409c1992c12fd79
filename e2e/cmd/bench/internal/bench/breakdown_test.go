package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
)

// TestSplitStages splits one sample from the log lines of a hub and an
// agent written through hclog in JSON, as the processes write them.
func TestSplitStages(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 23, 0, 0, 0, time.UTC)
	at := func(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }
	dir := t.TempDir()
	write := func(name string, lines func(hclog.Logger, func(float64))) []logEvent {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		var now time.Time
		log := hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Debug, JSONFormat: true, Output: f, TimeFn: func() time.Time { return now }})
		lines(log, func(ms float64) { now = at(ms) })
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		evs, err := readLog(path)
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	hub := write("hub", func(l hclog.Logger, clock func(float64)) {
		clock(-500)
		l.Debug("reconciled", "duration", 3*time.Millisecond, "renders", 0, "pending", 0) // an earlier pass
		clock(2)
		l.Info("webhook", "provider", "github")
		clock(40)
		l.Info("repo moved", "duration", 35*time.Millisecond)
		clock(45)
		l.Debug("reconciled", "duration", 4*time.Millisecond, "renders", 0, "pending", 1) // render job started
		clock(58)
		l.Debug("desired state sent", "cluster", "other", "bundles", 1)
		clock(60)
		l.Debug("desired state sent", "cluster", "c01", "bundles", 1)
		clock(62)
		l.Debug("reconciled", "duration", 5*time.Millisecond, "renders", 1, "pending", 0) // published, logged after the send
	})
	agent := write("agent", func(l hclog.Logger, clock func(float64)) {
		clock(70)
		l.Debug("desired state accepted", "bundles", 1)
		clock(71)
		l.Info("loaded bundle", "app", "other", "digest", "x")
		clock(72)
		l.Info("loaded bundle", "app", "one", "digest", "y")
		clock(100)
		l.Info("synced", "app", "one", "took", 28*time.Millisecond)
	})
	got, problems := splitStages(hub, agent, "one", "c01", []sampleWindow{{t0: at(0), end: at(130)}, {t0: at(200), end: at(300)}})
	if diff := cmp.Diff([]string{"sample 1: hub lines missing"}, problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	ms := func(v float64) samples { return samples{time.Duration(v * float64(time.Millisecond))} }
	want := []samples{
		ms(2),  // webhook sent → received
		ms(3),  // received → listing started (40 - 35)
		ms(35), // listing + fetch
		ms(17), // fetched → publishing pass started (62 - 5 = 57)
		ms(3),  // pass until the send at 60
		ms(0),  // pass ended → sent
		ms(12), // sent → loaded (app one; persisted before, by an older agent)
		ms(0),  // loaded → accepted: covered
		ms(28), // loaded → synced
		ms(30), // synced → hub shows Synced
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stages (-want +got):\n%s", diff)
	}
}

// TestSplitStagesPersistOverlap: an agent that persists the bundle while
// the app's engine loads and dry-runs it logs "accepted" after "loaded
// bundle".
func TestSplitStagesPersistOverlap(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 23, 0, 0, 0, time.UTC)
	at := func(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }
	ev := func(ms float64, msg string, kv ...any) logEvent {
		f := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			f[kv[i].(string)] = kv[i+1]
		}
		return logEvent{At: at(ms), Msg: msg, Fields: f}
	}
	hub := []logEvent{
		ev(2, "webhook"),
		ev(40, "repo moved", "duration", float64(35*time.Millisecond)),
		ev(60, "desired state sent", "cluster", "c01"),
		ev(62, "reconciled", "duration", float64(5*time.Millisecond)),
	}
	agent := []logEvent{
		ev(65, "loaded bundle", "app", "one"),
		ev(80, "desired state accepted"),
		ev(100, "synced", "app", "one"),
	}
	got, problems := splitStages(hub, agent, "one", "c01", []sampleWindow{{t0: at(0), end: at(130)}})
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	ms := func(v float64) samples { return samples{time.Duration(v * float64(time.Millisecond))} }
	if diff := cmp.Diff([]samples{ms(5), ms(15), ms(20), ms(30)}, got[6:]); diff != "" {
		t.Errorf("agent stages (-want +got):\n%s", diff)
	}
}
