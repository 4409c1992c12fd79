package ports

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestReserveBelowEphemeralDistinctBindable(t *testing.T) {
	hi := ephemeralLow()
	seen := map[int]bool{}
	for range 50 {
		p, err := Reserve()
		if err != nil {
			t.Fatal(err)
		}
		if p < lowest || p >= hi {
			t.Fatalf("port %d outside [%d, %d)", p, lowest, hi)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("reserved port %d: %v", p, err)
		}
		_ = l.Close()
	}
}

// A port held by another process is never handed out: the child reserves
// ports and prints them while it holds them; this process then tries to lock
// each of them.
func TestReserveHonoursOtherProcesses(t *testing.T) {
	if os.Getenv("PORTS_TEST_CHILD") == "1" {
		var out []string
		for range 20 {
			p, err := Reserve()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, strconv.Itoa(p))
		}
		_, _ = os.Stdout.WriteString("PORTS " + strings.Join(out, ",") + "\n")
		_, _ = os.Stdin.Read(make([]byte, 1)) // hold until the parent is done
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReserveHonoursOtherProcesses$")
	cmd.Env = append(os.Environ(), "PORTS_TEST_CHILD=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	var line string
	buf := make([]byte, 4096)
	for !strings.Contains(line, "\n") {
		n, err := stdout.Read(buf)
		if err != nil {
			t.Fatalf("child: %v (read %q)", err, line)
		}
		line += string(buf[:n])
	}
	i := strings.Index(line, "PORTS ")
	if i < 0 {
		t.Fatalf("child printed %q", line)
	}
	dir := filepath.Join(os.TempDir(), "flotilla-test-ports")
	for _, s := range strings.Split(strings.TrimSpace(line[i+len("PORTS "):]), ",") {
		f, ok, err := lock(filepath.Join(dir, s))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			_ = f.Close()
			t.Fatalf("port %s is held by the child, yet this process could lock it", s)
		}
	}
}
