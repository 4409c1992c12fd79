// Package sim simulates many Flotilla agents in one process for the
// fan-out benchmarks: each simulated agent registers its cluster through the
// hub's HTTP API, enrols with its own join token and CSR over TLS pinned to
// the hub CA, and keeps its own mTLS gRPC stream to the hub (its own TCP
// connection). Its engine is in memory: every bundle is accepted and
// reported Synced and Healthy at once, with no cluster behind it. A small
// loopback HTTP endpoint reports how many agents hold a given revision.
package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/e2e/cmd/agentsim/simstats"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// Options configure a simulation.
type Options struct {
	// HubAPI is the hub's HTTP base URL and AdminToken its admin token.
	HubAPI, AdminToken string
	// Prefix, First and Count name the clusters: Prefix-First ... .
	Prefix       string
	First, Count int
	Labels       map[string]string
	// Parallel bounds concurrent registrations and enrolments.
	Parallel int
	// ControlListen is the loopback address of the stats endpoint.
	ControlListen string
	// Balance, when set, lists hub agent addresses (replicas): the agents
	// of this process dial a round-robin TCP balancer over them, run in
	// this process, instead of the join's hub address (which must then be
	// another balancer over the same replicas: the TLS server name is
	// still its host). A balancer holds two descriptors per connection:
	// one per simulating process keeps every process within its own
	// open-file limit, where a single shared one could not hold 10,000
	// agents under a 20,000 limit.
	Balance []string
}

// Sim is a set of simulated agents.
type Sim struct {
	o        Options
	log      hclog.Logger
	agents   []*agent
	enrolled atomic.Int64
	failed   atomic.Int64
	retries  atomic.Int64 // enrolment attempts retried
	dialAddr string       // the in-process balancer's address, if any
	mu       sync.Mutex
	firstErr error
}

// Run registers, enrols and connects every agent, serves stats on
// o.ControlListen, and returns when ctx ends.
func Run(ctx context.Context, o Options, log hclog.Logger) error {
	if o.Parallel <= 0 {
		o.Parallel = 16
	}
	s := &Sim{o: o, log: log}
	if len(o.Balance) > 0 {
		lb, err := harness.StartBalancer()
		if err != nil {
			return fmt.Errorf("balancer: %w", err)
		}
		defer lb.Close()
		for _, b := range o.Balance {
			lb.Add(b)
		}
		s.dialAddr = lb.Addr
	}
	lis, err := net.Listen("tcp", o.ControlListen)
	if err != nil {
		return fmt.Errorf("control listener %s: %w", o.ControlListen, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(s.stats), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Close()

	s.agents = make([]*agent, o.Count)
	for i := range s.agents {
		s.agents[i] = &agent{name: fmt.Sprintf("%s-%d", o.Prefix, o.First+i)}
	}
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.Parallel}}
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan *agent)
	for range o.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range work {
				if err := s.join(ctx, hc, a); err != nil {
					s.failed.Add(1)
					s.mu.Lock()
					if s.firstErr == nil {
						s.firstErr = err
					}
					s.mu.Unlock()
					log.Error("agent failed to join", "cluster", a.name, "error", err)
					continue
				}
				s.enrolled.Add(1)
				wg.Add(1)
				go func() { defer wg.Done(); a.run(ctx, a.hubAddr()) }()
			}
		}()
	}
feed:
	for _, a := range s.agents {
		select {
		case work <- a:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	log.Info("agents joined", "enrolled", s.enrolled.Load(), "failed", s.failed.Load(), "enrol_retries", s.retries.Load(), "took", time.Since(start).Round(time.Millisecond))
	<-ctx.Done()
	wg.Wait()
	return nil
}

func (s *Sim) join(ctx context.Context, hc *http.Client, a *agent) error {
	j, err := register(ctx, hc, s.o.HubAPI, s.o.AdminToken, a.name, s.o.Labels)
	if err != nil {
		return err
	}
	dial := j.HubAddr
	if s.dialAddr != "" {
		dial = s.dialAddr
	}
	// Like the real agent: jittered exponential backoff from 500 ms to
	// 30 s while the hub cannot be reached or is overloaded (a refused
	// connection or handshake); a refusal of the join itself ends it.
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval, bo.MaxElapsedTime = 500*time.Millisecond, 30*time.Second, 5*time.Minute
	id, err := backoff.RetryNotifyWithData(func() (*identity, error) {
		id, err := enroll(ctx, j, dial)
		if err != nil && !transient(err) {
			return nil, backoff.Permanent(err)
		}
		return id, err
	}, backoff.WithContext(bo, ctx), func(err error, wait time.Duration) {
		s.retries.Add(1)
		s.log.Debug("enrolment failed; retrying", "cluster", a.name, "error", err, "retry_in", wait)
	})
	if err != nil {
		return err
	}
	if s.dialAddr != "" {
		j.HubAddr = s.dialAddr
	}
	a.mu.Lock()
	a.id, a.addr = id, j.HubAddr
	a.mu.Unlock()
	return nil
}

// addHeld counts one held app into st.
func addHeld(st *simstats.Stats, h held) {
	st.Holding++
	recv := h.received.UnixNano()
	if st.FirstRecv == 0 || recv < st.FirstRecv {
		st.FirstRecv = recv
	}
	st.LastRecv = max(st.LastRecv, recv)
	if !h.reported.IsZero() {
		st.Reported++
		st.LastSent = max(st.LastSent, h.reported.UnixNano())
	}
}

func (s *Sim) stats(w http.ResponseWriter, r *http.Request) {
	app, rev, prefix := r.URL.Query().Get("app"), r.URL.Query().Get("revision"), r.URL.Query().Get("prefix")
	st := simstats.Stats{Agents: len(s.agents), Enrolled: s.enrolled.Load(), Failed: s.failed.Load(), EnrolRetries: s.retries.Load()}
	s.mu.Lock()
	if s.firstErr != nil {
		st.FirstErr = s.firstErr.Error()
	}
	s.mu.Unlock()
	var lastErr error
	for _, a := range s.agents {
		a.mu.Lock()
		if a.connected {
			st.Connected++
		}
		st.Sessions += a.sessions
		if a.lastErr != nil && lastErr == nil && !errors.Is(a.lastErr, context.Canceled) {
			lastErr = a.lastErr
		}
		if prefix != "" {
			for name, h := range a.apps {
				if strings.HasPrefix(name, prefix) && h.revision == rev {
					addHeld(&st, h)
				}
			}
		} else if h, ok := a.apps[app]; ok && app != "" && h.revision == rev {
			addHeld(&st, h)
		}
		a.mu.Unlock()
	}
	if st.FirstErr == "" && lastErr != nil {
		st.FirstErr = lastErr.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Agents", strconv.Itoa(len(s.agents)))
	_ = json.NewEncoder(w).Encode(st)
}
