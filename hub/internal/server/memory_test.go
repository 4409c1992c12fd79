package server

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestDecideMemory(t *testing.T) {
	defaults := DefaultOptions()
	with := func(f func(*Options)) Options {
		o := defaults
		f(&o)
		return o
	}
	for _, tt := range []struct {
		name    string
		opts    Options
		env     map[string]string
		cgroup  int64
		want    memorySettings
		wantErr bool
	}{
		{name: "defaults outside a container", opts: defaults, want: memorySettings{GCPercent: DefaultGCPercent}},
		{name: "in a 2 GiB container", opts: defaults, cgroup: 2 << 30,
			want: memorySettings{GCPercent: DefaultGCPercent, MemoryLimit: 2 << 30 / 10 * 9, Reasons: []string{"memory limit from the container's"}}},
		{name: "flags", opts: with(func(o *Options) { o.GCPercent, o.MemoryLimit = 80, "900Mi" }), cgroup: 2 << 30,
			want: memorySettings{GCPercent: 80, MemoryLimit: 900 << 20}},
		{name: "Go's runtime default", opts: with(func(o *Options) { o.GCPercent = 0 }), want: memorySettings{}},
		{name: "GOGC and GOMEMLIMIT win", opts: with(func(o *Options) { o.MemoryLimit = "1Gi" }), cgroup: 2 << 30,
			env:  map[string]string{"GOGC": "200", "GOMEMLIMIT": "1500MiB"},
			want: memorySettings{Reasons: []string{"GOGC is set", "GOMEMLIMIT is set"}}},
		{name: "bad limit", opts: with(func(o *Options) { o.MemoryLimit = "lots" }), wantErr: true},
		{name: "negative limit", opts: with(func(o *Options) { o.MemoryLimit = "-1Gi" }), wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decideMemory(tt.opts, func(k string) string { return tt.env[k] }, tt.cgroup)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error: %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if d := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); d != "" {
				t.Fatalf("settings (-want +got):\n%s", d)
			}
		})
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name    string
		content string // "" = no file
		want    int64
	}{
		{name: "cgroup v2 limit", content: "1073741824\n", want: 1 << 30},
		{name: "cgroup v2 no limit", content: "max\n", want: 0},
		{name: "cgroup v1 no limit", content: "9223372036854771712\n", want: 0},
		{name: "not in a cgroup", want: 0},
		{name: "garbage", content: "lots\n", want: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(dir, "memory.max")
			os.Remove(f)
			if tt.content != "" {
				if err := os.WriteFile(f, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			old := cgroupFiles
			cgroupFiles = []string{f}
			defer func() { cgroupFiles = old }()
			if got := cgroupMemoryLimit(); got != tt.want {
				t.Fatalf("limit %d, want %d", got, tt.want)
			}
		})
	}
}
