// Package docker runs the docker CLI for the container e2e tier: containers,
// networks and images of a real Docker engine, named so that a test run can
// remove what it made.
package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// EnvDocker names the docker CLI binary (default "docker" on the PATH).
const EnvDocker = "FLOTILLA_DOCKER"

// ErrNoEngine means no Docker engine answers.
var ErrNoEngine = errors.New("no Docker engine answers (make e2e-containers starts one)")

// CLI runs one docker binary.
type CLI struct {
	// Bin is the docker binary; empty means FLOTILLA_DOCKER or "docker".
	Bin string
}

func (c CLI) bin() string {
	if c.Bin != "" {
		return c.Bin
	}
	if b := os.Getenv(EnvDocker); b != "" {
		return b
	}
	return "docker"
}

// Run runs docker with args and returns its trimmed standard output; the
// error carries the command and its standard error.
func (c CLI) Run(ctx context.Context, args ...string) (string, error) {
	return c.RunInput(ctx, nil, args...)
}

// RunInput is Run with stdin read from in.
func (c CLI) RunInput(ctx context.Context, in io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.bin(), args...)
	cmd.Stdin = in
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// Ping fails with ErrNoEngine when no engine answers.
func (c CLI) Ping(ctx context.Context) error {
	if _, err := c.Run(ctx, "version", "--format", "{{.Server.Version}}"); err != nil {
		return fmt.Errorf("%w: %w", ErrNoEngine, err)
	}
	return nil
}

// HasImage reports whether ref is in the engine's image store.
func (c CLI) HasImage(ctx context.Context, ref string) bool {
	_, err := c.Run(ctx, "image", "inspect", "--format", "{{.Id}}", ref)
	return err == nil
}

// IP returns the address of container on network.
func (c CLI) IP(ctx context.Context, container, network string) (string, error) {
	ip, err := c.Run(ctx, "inspect", "--format", `{{(index .NetworkSettings.Networks "`+network+`").IPAddress}}`, container)
	if err != nil {
		return "", err
	}
	if ip == "" || ip == "<no value>" {
		return "", fmt.Errorf("container %s has no address on network %s", container, network)
	}
	return ip, nil
}

// Gateway returns the gateway address of network: the host's address on it.
func (c CLI) Gateway(ctx context.Context, network string) (string, error) {
	gw, err := c.Run(ctx, "network", "inspect", "--format", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", network)
	if err != nil {
		return "", err
	}
	if gw == "" {
		return "", fmt.Errorf("network %s has no gateway", network)
	}
	return gw, nil
}

// HostPort returns the loopback host:port that container's port (e.g.
// "6443/tcp") is published on.
func (c CLI) HostPort(ctx context.Context, container, port string) (string, error) {
	out, err := c.Run(ctx, "port", container, port)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "127.0.0.1:") {
			return strings.TrimSpace(line), nil
		}
	}
	return "", fmt.Errorf("container %s: port %s is not published on 127.0.0.1 (%q)", container, port, out)
}

// Logs returns the last n lines of container's output.
func (c CLI) Logs(ctx context.Context, container string, n int) string {
	cmd := exec.CommandContext(ctx, c.bin(), "logs", "--tail", fmt.Sprint(n), container)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(docker logs %s: %v) %s", container, err, out)
	}
	return string(out)
}

// Remove force-removes containers (and their anonymous volumes), ignoring
// those already gone.
func (c CLI) Remove(ctx context.Context, containers ...string) error {
	if len(containers) == 0 {
		return nil
	}
	_, err := c.Run(ctx, append([]string{"rm", "-f", "-v"}, containers...)...)
	if err != nil && strings.Contains(err.Error(), "No such container") {
		return nil
	}
	return err
}
