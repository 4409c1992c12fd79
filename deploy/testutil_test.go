package deploy

import (
	"slices"
)

// repoRoot is the repository root, from this package's folder.
const repoRoot = ".."

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
