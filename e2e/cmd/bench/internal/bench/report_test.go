package bench

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestKeptSection: a regenerated document carries over the earlier file's
// section from keepMarker on, and nothing without one.
func TestKeptSection(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, earlier, want string
	}{
		{name: "no earlier file", want: ""},
		{name: "no marker", earlier: "# Benchmarks\n\nold rows\n", want: ""},
		{name: "marker", earlier: "# Benchmarks\n\nold rows\n\n" + keepMarker + "\n## Live view\n\nrows\n", want: "\n" + keepMarker + "\n## Live view\n\nrows\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name+".md")
			if tc.earlier != "" {
				if err := os.WriteFile(p, []byte(tc.earlier), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if d := cmp.Diff(tc.want, keptSection(p)); d != "" {
				t.Errorf("kept (-want +got):\n%s", d)
			}
		})
	}
	// The real document keeps its live-view section.
	if got := keptSection(filepath.Join("..", "..", "..", "..", "..", "docs", "benchmarks.md")); got == "" {
		t.Error("docs/benchmarks.md has no section make bench keeps")
	}
}
