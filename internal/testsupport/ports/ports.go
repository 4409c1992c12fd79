// Package ports hands test processes loopback TCP ports that no other test
// process and no outgoing connection will take before the process they are
// meant for binds them.
//
// Tests that must name a port before a child process listens on it (a hub's
// --http-listen, an API server's --secure-port) cannot bind ":0" themselves.
// Picking a port the kernel just handed to a closed listener races twice:
// the kernel hands the same ephemeral range to outgoing connections (every
// client of an API server takes one), and another test binary running at the
// same time (go test runs packages in parallel) may pick the same port. Both
// were seen in make test as a child's "bind: address already in use".
//
// Reserve avoids both: it picks below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), where connect() never picks, and holds an
// advisory lock (flock) on a per-port file under the temporary directory for
// the life of the process, which every test process honours. The kernel
// drops the lock when the process exits, however it exits.
package ports

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// lowest is the first port handed out: well above the registered services
// that a developer machine may run (databases, proxies below 10000).
const lowest = 20000

var (
	mu sync.Mutex
	// held keeps the lock files open (and so locked) until the process exits.
	held = map[int]*os.File{}
)

// Reserve returns a free loopback port, reserved for this process.
func Reserve() (int, error) {
	hi := ephemeralLow()
	if hi <= lowest+100 {
		return 0, fmt.Errorf("ports: the ephemeral range starts at %d, leaving no room below it above %d", hi, lowest)
	}
	dir := filepath.Join(os.TempDir(), "flotilla-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, fmt.Errorf("ports: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for range 1000 {
		p := lowest + rand.IntN(hi-lowest)
		if held[p] != nil {
			continue
		}
		f, ok, err := lock(filepath.Join(dir, strconv.Itoa(p)))
		if err != nil {
			return 0, err
		}
		if !ok {
			continue // another test process holds it
		}
		// Free of listeners outside the test processes too?
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			_ = f.Close()
			continue
		}
		_ = l.Close()
		held[p] = f
		return p, nil
	}
	return 0, errors.New("ports: no free port found in 1000 tries")
}

// Addr returns "127.0.0.1:port" for a reserved port.
func Addr() (string, error) {
	p, err := Reserve()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// lock takes an exclusive, non-blocking flock on path; ok is false when
// another process holds it.
func lock(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, false, fmt.Errorf("ports: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("ports: lock %s: %w", path, err)
	}
	return f, true, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range, 32768
// (Linux's default) when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 0 {
		return 32768
	}
	return n
}
