package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// The durability test re-executes the test binary as a writer that prints
// one "ack ..." line after each write returns, kills it with SIGKILL in the
// middle of its stream, reopens the file and checks every acknowledged
// write is there.

const (
	durabilityEnv     = "FLOTILLA_STORE_DURABILITY_CHILD"
	durabilityWriters = 8
	durabilityAcks    = 2000 // acks read before the kill
)

// TestDurabilityChild is the writer process; it does nothing in a normal run.
func TestDurabilityChild(t *testing.T) {
	path := os.Getenv(durabilityEnv)
	if path == "" {
		t.Skip("only runs as the child of TestDurabilityKill9")
	}
	s, err := OpenWithOptions(path, hclog.NewNullLogger(), Options{HistoryLimit: -1})
	if err != nil {
		fmt.Printf("fail open: %v\n", err)
		os.Exit(2)
	}
	ctx := context.Background()
	var mu sync.Mutex
	ack := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		// One write(2) per line: a line is either wholly in the pipe or not.
		os.Stdout.WriteString(fmt.Sprintf("ack "+format+"\n", args...))
	}
	fail := func(what string, err error) {
		mu.Lock()
		fmt.Printf("fail %s: %v\n", what, err)
		os.Exit(2)
	}
	if err := s.PutCA(ctx, []byte("cert"), []byte("key")); err != nil {
		fail("PutCA", err)
	}
	ack("ca")
	var wg sync.WaitGroup
	for w := range durabilityWriters {
		cluster := fmt.Sprintf("c%d", w)
		wg.Go(func() {
			if err := s.CreateCluster(ctx, Cluster{Name: cluster}); err != nil {
				fail("CreateCluster", err)
			}
			ack("cluster %s", cluster)
			for i := 0; ; i++ {
				id, err := s.AppendHistory(ctx, HistoryEntry{App: "app", Cluster: cluster, Revision: strconv.Itoa(i)})
				if err != nil {
					fail("AppendHistory", err)
				}
				ack("history %d %s %d", id, cluster, i)
				if err := s.PutStatus(ctx, cluster, &apiv1alpha1.AppStatus{App: "app", Revision: strconv.Itoa(i)}); err != nil {
					fail("PutStatus", err)
				}
				ack("status %s %d", cluster, i)
				if err := s.AppendAudit(ctx, AuditEntry{Actor: cluster, Target: strconv.Itoa(i)}); err != nil {
					fail("AppendAudit", err)
				}
				ack("audit %s %d", cluster, i)
				if i%20 == 0 {
					raw, _, err := s.CreateAPIToken(ctx, fmt.Sprintf("%s-%d", cluster, i), RoleReadOnly, time.Now())
					if err != nil {
						fail("CreateAPIToken", err)
					}
					ack("token %s", raw)
				}
			}
		})
	}
	wg.Wait()
}

func TestDurabilityKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a writer process")
	}
	path := filepath.Join(t.TempDir(), "hub.db")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestDurabilityChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), durabilityEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	type key struct{ cluster, n string }
	var (
		ca       bool
		clusters = map[string]bool{}
		history  = map[uint64]key{}
		status   = map[string]int{} // cluster -> last acknowledged revision
		audit    = map[key]bool{}
		tokens   []string
		acks     int
	)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "ack" {
			t.Errorf("child: %s", line)
			continue
		}
		switch f[1] {
		case "ca":
			ca = true
		case "cluster":
			clusters[f[2]] = true
		case "history":
			id, _ := strconv.ParseUint(f[2], 10, 64)
			history[id] = key{f[3], f[4]}
		case "status":
			status[f[2]], _ = strconv.Atoi(f[3])
		case "audit":
			audit[key{f[2], f[3]}] = true
		case "token":
			tokens = append(tokens, f[2])
		}
		acks++
		if acks == durabilityAcks {
			// Lines already in the pipe are still read below: they were
			// acknowledged before the kill.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v", err)
	}
	if acks < durabilityAcks {
		t.Fatalf("child acknowledged only %d writes", acks)
	}
	t.Logf("child acknowledged %d writes (%d history, %d tokens) before SIGKILL", acks, len(history), len(tokens))

	s, err := OpenWithOptions(path, hclog.NewNullLogger(), Options{HistoryLimit: -1})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer s.Close()
	checkConsistent(t, s)
	ctx := t.Context()

	if _, _, err := s.GetCA(ctx); ca && err != nil {
		t.Errorf("acknowledged CA lost: %v", err)
	}
	for c := range clusters {
		if _, err := s.GetCluster(ctx, c); err != nil {
			t.Errorf("acknowledged cluster %s lost: %v", c, err)
		}
	}
	for id, want := range history {
		e, err := s.GetHistory(ctx, id)
		if err != nil {
			t.Errorf("acknowledged history %d lost: %v", id, err)
			continue
		}
		if e.Cluster != want.cluster || e.Revision != want.n {
			t.Errorf("history %d is %s/%s, acknowledged %s/%s", id, e.Cluster, e.Revision, want.cluster, want.n)
		}
	}
	stored := 0
	for p := (Page{Limit: MaxPageLimit}); ; {
		es, next, err := s.ListHistory(ctx, "", "", p)
		if err != nil {
			t.Fatal(err)
		}
		stored += len(es)
		if next == "" {
			break
		}
		p.After = next
	}
	if extra := stored - len(history); extra < 0 || extra > durabilityWriters {
		t.Errorf("%d history entries stored, %d acknowledged: want at most one unacknowledged per writer", stored, len(history))
	}
	recs, err := s.ListStatus(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	revs := map[string]int{}
	for _, r := range recs {
		revs[r.Cluster], _ = strconv.Atoi(r.Status.GetRevision())
	}
	for c, acked := range status {
		// The write after the last acknowledged one may have committed too.
		if got := revs[c]; got != acked && got != acked+1 {
			t.Errorf("status of cluster %s has revision %d, last acknowledged %d", c, got, acked)
		}
	}
	seen := map[key]bool{}
	p := Page{Limit: MaxPageLimit}
	for {
		es, next, err := s.ListAudit(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			seen[key{e.Actor, e.Target}] = true
		}
		if next == "" {
			break
		}
		p.After = next
	}
	for k := range audit {
		if !seen[k] {
			t.Errorf("acknowledged audit entry %s/%s lost", k.cluster, k.n)
		}
	}
	for _, raw := range tokens {
		if _, err := s.LookupAPIToken(ctx, raw); err != nil {
			t.Errorf("acknowledged api token lost: %v", err)
		}
	}
}
