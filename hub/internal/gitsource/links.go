package gitsource

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// LeftOutFile is where a checkout lists the paths of its tree it did not
// write, as JSON (path → why), relative to the checkout root. It exists only
// when something was left out. The .git folder is never part of a checked
// out tree, so no repository can write or replace it.
const LeftOutFile = ".git/flotilla-left-out.json"

// entryKind is what a path of a tree is.
type entryKind uint8

const (
	kindFile entryKind = iota + 1
	kindDir
	kindLink
)

// resolveLink decides whether the symbolic link at link (a slash path
// relative to the checkout root) pointing at target may be written into a
// checkout of the tree whose paths are kinds (every file, folder and link of
// the tree, folders including their parents). It returns the path the link
// leads to.
//
// A link is refused when its target is empty or absolute, when following it
// leaves the tree (a ".." above the root), when the target or any folder on
// the way to it is itself a symbolic link, when it passes through a file, or
// when the target does not exist in the tree. Because every component
// followed is then a real folder of the checkout, resolving the target by
// its text gives the same path as the kernel's resolution, and the link
// leads into the checkout whatever path it is reached through: a chain of
// links each resolved inside the tree stays inside the tree.
func resolveLink(kinds map[string]entryKind, link, target string) (string, error) {
	if target == "" {
		return "", errors.New("symbolic link with an empty target")
	}
	if strings.HasPrefix(target, "/") {
		return "", fmt.Errorf("symbolic link to the absolute path %q", target)
	}
	var stack []string
	if d := path.Dir(link); d != "." {
		stack = strings.Split(d, "/")
	}
	parts := strings.Split(target, "/")
	for i, c := range parts {
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return "", fmt.Errorf("symbolic link to %q leads out of the repository", target)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, c)
		p := strings.Join(stack, "/")
		switch kinds[p] {
		case kindLink:
			return "", fmt.Errorf("symbolic link to %q leads through %s, itself a symbolic link", target, p)
		case kindFile:
			if i != len(parts)-1 {
				return "", fmt.Errorf("symbolic link to %q leads through %s, a file", target, p)
			}
		case kindDir:
		default:
			return "", fmt.Errorf("symbolic link to %q: %s is not in the repository", target, p)
		}
	}
	if len(stack) == 0 {
		return ".", nil
	}
	return strings.Join(stack, "/"), nil
}

// writeRefused writes the LeftOutFile when anything was left out.
func writeRefused(root *os.Root, left map[string]string) error {
	if len(left) == 0 {
		return nil
	}
	b, err := json.MarshalIndent(left, "", "  ")
	if err != nil {
		return err
	}
	if err := root.MkdirAll(path.Dir(LeftOutFile), 0o755); err != nil {
		return fmt.Errorf("%s: %w", LeftOutFile, err)
	}
	if err := root.WriteFile(LeftOutFile, b, 0o644); err != nil {
		return fmt.Errorf("%s: %w", LeftOutFile, err)
	}
	return nil
}

// LeftOut returns what the checkout at root did not write (path relative to
// the root → why); nothing for a checkout that wrote its whole tree.
func LeftOut(root *os.Root) (map[string]string, error) {
	b, err := root.ReadFile(LeftOutFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", LeftOutFile, err)
	}
	var left map[string]string
	if err := json.Unmarshal(b, &left); err != nil {
		return nil, fmt.Errorf("%s: %w", LeftOutFile, err)
	}
	return left, nil
}
