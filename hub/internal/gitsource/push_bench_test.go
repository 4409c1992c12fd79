//go:build !unit

package gitsource

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
)

// BenchmarkPoll times the poll that follows a push of one small commit:
// with the ref listing first (a timer poll, a webhook without its commit)
// and without (a webhook that names it), and the listing alone.
func BenchmarkPoll(b *testing.B) {
	for _, mode := range []string{"listing+fetch", "fetch", "listing"} {
		b.Run(mode, func(b *testing.B) {
			dir := b.TempDir()
			_, repo := gitserver.StartT(b, dir, "r")
			if err := repo.Write(map[string][]byte{"a.yaml": []byte("a: 0\n")}); err != nil {
				b.Fatal(err)
			}
			if _, err := repo.CommitAndPush("zero"); err != nil {
				b.Fatal(err)
			}
			m := New(Options{Dir: filepath.Join(dir, "state"), PollInterval: time.Hour, AllowInsecureHTTP: true}, hclog.NewNullLogger())
			if err := m.Track(b.Context(), repo.URL); err != nil {
				b.Fatal(err)
			}
			mr, _ := m.mirror(repo.URL)
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				if err := repo.Write(map[string][]byte{"a.yaml": []byte(fmt.Sprintf("a: %d\n", i+1))}); err != nil {
					b.Fatal(err)
				}
				c, err := repo.CommitAndPush("next")
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				switch mode {
				case "listing+fetch":
					_, err = mr.sync(b.Context())
				case "fetch":
					_, _, err = mr.fetchPushed(b.Context(), []Push{{Ref: "refs/heads/main", After: c}})
				case "listing":
					_, _, err = mr.listRefs(b.Context())
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
