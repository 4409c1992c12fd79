//go:build !unit

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
// write is there. It does so for several rounds on the same file, so a
// writer also starts on a file whose last writer was killed.

const (
	durabilityPathEnv  = "FLOTILLA_STORE_DURABILITY_CHILD"
	durabilityRoundEnv = "FLOTILLA_STORE_DURABILITY_ROUND"
	durabilityWriters  = 8
	durabilityAcks     = 1500 // acks read before the kill, per round
	durabilityRounds   = 3
)

// TestDurabilityChild is the writer process; it does nothing in a normal run.
func TestDurabilityChild(t *testing.T) {
	path, round := os.Getenv(durabilityPathEnv), os.Getenv(durabilityRoundEnv)
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
		if _, err := fmt.Fprintf(os.Stdout, "ack "+format+"\n", args...); err != nil {
			panic(err) // the parent reads the pipe; it cannot be gone
		}
	}
	fail := func(what string, err error) {
		mu.Lock()
		fmt.Printf("fail %s: %v\n", what, err)
		os.Exit(2)
	}
	if err := s.PutCA(ctx, []byte("cert-"+round), []byte("key-"+round)); err != nil {
		fail("PutCA", err)
	}
	ack("ca %s", round)
	var wg sync.WaitGroup
	for w := range durabilityWriters {
		cluster := fmt.Sprintf("c%d", w)
		wg.Go(func() {
			if err := s.PutCluster(ctx, Cluster{Name: cluster, AgentVersion: round}); err != nil {
				fail("PutCluster", err)
			}
			ack("cluster %s %s", cluster, round)
			for i := 0; ; i++ {
				rev := round + "." + strconv.Itoa(i)
				id, err := s.AppendHistory(ctx, HistoryEntry{App: "app", Cluster: cluster, Revision: rev})
				if err != nil {
					fail("AppendHistory", err)
				}
				ack("history %d %s %s", id, cluster, rev)
				if err := s.PutStatus(ctx, cluster, &apiv1alpha1.AppStatus{App: "app", Revision: rev}); err != nil {
					fail("PutStatus", err)
				}
				ack("status %s %d", cluster, i)
				if err := s.AppendAudit(ctx, AuditEntry{Actor: cluster, Target: rev}); err != nil {
					fail("AppendAudit", err)
				}
				ack("audit %s %s", cluster, rev)
				if i%20 == 0 {
					raw, _, err := s.CreateAPIToken(ctx, fmt.Sprintf("%s-%s", cluster, rev), RoleReadOnly, time.Now())
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

// acked is what the writers acknowledged, over all rounds.
type acked struct {
	ca       string            // round of the last CA
	clusters map[string]string // name -> round of the last put
	history  map[uint64][2]string
	status   map[string]int // cluster -> last revision of the current round
	audit    map[[2]string]bool
	tokens   []string
}

func TestDurabilityKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns writer processes")
	}
	path := filepath.Join(t.TempDir(), "hub.db")
	a := acked{clusters: map[string]string{}, history: map[uint64][2]string{}, audit: map[[2]string]bool{}}
	for round := range durabilityRounds {
		r := strconv.Itoa(round)
		a.status = map[string]int{}
		n := runKilledWriter(t, path, r, &a)
		t.Logf("round %d: writer acknowledged %d writes before SIGKILL; %d history entries in all", round, n, len(a.history))
		checkAcked(t, path, r, &a)
		if t.Failed() {
			return
		}
	}
}

// runKilledWriter runs a writer on path, kills it after durabilityAcks
// acknowledgements, records them all in a and returns their number.
func runKilledWriter(t *testing.T, path, round string, a *acked) int {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestDurabilityChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), durabilityPathEnv+"="+path, durabilityRoundEnv+"="+round)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acks := 0
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "ack" {
			t.Errorf("writer: %s", line)
			continue
		}
		switch f[1] {
		case "ca":
			a.ca = f[2]
		case "cluster":
			a.clusters[f[2]] = f[3]
		case "history":
			id, _ := strconv.ParseUint(f[2], 10, 64)
			a.history[id] = [2]string{f[3], f[4]}
		case "status":
			a.status[f[2]], _ = strconv.Atoi(f[3])
		case "audit":
			a.audit[[2]string{f[2], f[3]}] = true
		case "token":
			a.tokens = append(a.tokens, f[2])
		}
		acks++
		if acks == durabilityAcks {
			// Lines already in the pipe are still read: they were
			// acknowledged before the kill.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("writer did not die by SIGKILL: %v", err)
	}
	if acks < durabilityAcks {
		t.Fatalf("writer acknowledged only %d writes", acks)
	}
	return acks
}

// checkAcked reopens path and checks that everything in a is there.
func checkAcked(t *testing.T, path, round string, a *acked) {
	t.Helper()
	s, err := OpenWithOptions(path, hclog.NewNullLogger(), Options{HistoryLimit: -1})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer s.Close()
	checkConsistent(t, s)
	ctx := t.Context()

	if cert, _, err := s.GetCA(ctx); err != nil || string(cert) != "cert-"+a.ca {
		t.Errorf("CA of round %s: %q, %v", a.ca, cert, err)
	}
	for name, r := range a.clusters {
		if c, err := s.GetCluster(ctx, name); err != nil || c.AgentVersion != r {
			t.Errorf("cluster %s of round %s: %+v, %v", name, r, c, err)
		}
	}
	for id, want := range a.history {
		e, err := s.GetHistory(ctx, id)
		if err != nil {
			t.Errorf("acknowledged history %d lost: %v", id, err)
			continue
		}
		if e.Cluster != want[0] || e.Revision != want[1] {
			t.Errorf("history %d is %s/%s, acknowledged %s/%s", id, e.Cluster, e.Revision, want[0], want[1])
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
	// Each killed writer may have committed one entry it did not get to
	// acknowledge.
	if extra := stored - len(a.history); extra < 0 || extra > durabilityWriters*durabilityRounds {
		t.Errorf("%d history entries stored, %d acknowledged", stored, len(a.history))
	}
	recs, err := s.ListStatus(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	revs := map[string]string{}
	for _, r := range recs {
		revs[r.Cluster] = r.Status.GetRevision()
	}
	for c, i := range a.status {
		// The write after the last acknowledged one may have committed too.
		if got := revs[c]; got != fmt.Sprintf("%s.%d", round, i) && got != fmt.Sprintf("%s.%d", round, i+1) {
			t.Errorf("status of cluster %s has revision %s, last acknowledged %s.%d", c, got, round, i)
		}
	}
	seen := map[[2]string]bool{}
	for p := (Page{Limit: MaxPageLimit}); ; {
		es, next, err := s.ListAudit(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			seen[[2]string{e.Actor, e.Target}] = true
		}
		if next == "" {
			break
		}
		p.After = next
	}
	for k := range a.audit {
		if !seen[k] {
			t.Errorf("acknowledged audit entry %s/%s lost", k[0], k[1])
		}
	}
	for _, raw := range a.tokens {
		if _, err := s.LookupAPIToken(ctx, raw); err != nil {
			t.Errorf("acknowledged api token lost: %v", err)
		}
	}
}
