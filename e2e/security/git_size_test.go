//go:build !unit

package security

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// vmHWM reads the peak resident size of process pid, in KiB.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// Finding 6 (git): a 600 MB blob in a small repo took the hub to 2.5 GB.
// Scaled down (the limit is a flag): with an 8 MiB limit, a repo with a
// 32 MiB random blob (a 32 MiB pack) and one with 96 MiB of zeros (a tiny
// pack that inflates to 96 MiB) are both refused with an error naming the
// repo and the limit, and the hub's peak memory stays far below the blobs.
func TestGitFetchSizeLimit(t *testing.T) {
	t.Parallel()
	_, random := gitRepo(t, "random")
	blob := make([]byte, 32<<20)
	if _, err := rand.Read(blob); err != nil {
		t.Fatal(err)
	}
	if err := random.Write(map[string][]byte{"big.bin": blob}); err != nil {
		t.Fatal(err)
	}
	if _, err := random.CommitAndPush("32 MiB of random bytes"); err != nil {
		t.Fatal(err)
	}
	_, zeros := gitRepo(t, "zeros")
	if err := zeros.Write(map[string][]byte{"big.bin": make([]byte, 96<<20)}); err != nil {
		t.Fatal(err)
	}
	if _, err := zeros.CommitAndPush("96 MiB of zeros"); err != nil {
		t.Fatal(err)
	}
	apps := filepath.Join(t.TempDir(), "apps")
	writeApp(t, apps, "random", random.URL)
	writeApp(t, apps, "zeros", zeros.URL)
	h := startHub(t, apps, "--git-max-fetch-size", "8Mi")

	waitAppError(t, h, "random", "limit of 8 MiB", random.URL)
	waitAppError(t, h, "zeros", "limit of 8 MiB", zeros.URL)
	if peak := vmHWM(t, h.PID()); peak > 96<<10 {
		t.Errorf("hub peak RSS %d MiB after refusing the blobs; want under 96 MiB", peak>>10)
	} else {
		t.Logf("hub peak RSS %d MiB", peak>>10)
	}
}
