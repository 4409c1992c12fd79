package harness

import (
	"path/filepath"
	"strings"
	"time"
)

// Agent is a running flotilla-agent process.
type Agent struct {
	*Proc
	Cluster string
	// MetricsURL is the base URL of the agent's /metrics and /healthz
	// (a free loopback port chosen at start, kept across Restart); empty
	// when extra arguments disabled the listener.
	MetricsURL string
	args       []string
	bin        string
	dir        string
}

// StartAgent starts flotilla-agent for cluster with its kubeconfig, enrolling
// with join (join.Token may be empty once enrolled: the identity is kept in
// the cluster's Secret). A --metrics-listen among extra wins over the free
// port StartAgent picks.
func StartAgent(binDir, dir, kubeconfig string, join Join, extra ...string) (*Agent, error) {
	metricsAddr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	for i, arg := range extra {
		switch {
		case arg == "--metrics-listen" && i+1 < len(extra):
			metricsAddr = extra[i+1]
		case strings.HasPrefix(arg, "--metrics-listen="):
			metricsAddr = strings.TrimPrefix(arg, "--metrics-listen=")
		}
	}
	a := &Agent{Cluster: join.Cluster, bin: filepath.Join(binDir, "flotilla-agent"), dir: dir}
	if metricsAddr != "" {
		a.MetricsURL = "http://" + metricsAddr
	}
	a.args = append([]string{
		"--hub", join.HubAddr, "--cluster", join.Cluster, "--join-token", join.Token, "--ca-hash", join.CAHash,
		"--kubeconfig", kubeconfig, "--metrics-listen", metricsAddr, "--log-level", "debug",
	}, extra...)
	if err := a.start(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Agent) start() error {
	p, err := StartProc("agent-"+a.Cluster, a.dir, a.bin, a.args, nil)
	if err != nil {
		return err
	}
	a.Proc = p
	return nil
}

// Restart starts the agent again with the same arguments.
func (a *Agent) Restart() error { return a.start() }

// WaitExit waits up to timeout for the agent to end and reports whether
// it did and how (the error of its exit).
func (a *Agent) WaitExit(timeout time.Duration) (bool, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-a.done:
		return a.Exited()
	case <-t.C:
		return false, nil
	}
}
