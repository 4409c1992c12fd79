package buildspec

import (
	"bufio"
	"io"
	"regexp"
	"strings"
)

// Makefile holds the variables and rule recipes of a GNU Makefile, read
// without running make.
type Makefile struct {
	// Vars maps a variable to its value as written, runs of white space
	// collapsed to one space (later assignments win; += appends; ?= sets
	// only when unset).
	Vars map[string]string
	// Recipes maps a target to its recipe lines, tabs and @/- prefixes
	// removed, continuations joined.
	Recipes map[string][]string
}

var (
	assignRE = regexp.MustCompile(`^(?:export\s+|override\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*(:::=|::=|:=|\?=|\+=|!=|=)\s*(.*)$`)
	ruleRE   = regexp.MustCompile(`^([^:=#\t][^:=#]*?)\s*::?(?:[^=]|$)`)
	refRE    = regexp.MustCompile(`\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]`)
)

// ParseMakefile reads variable assignments and rules. Conditionals,
// includes and functions are not evaluated.
func ParseMakefile(r io.Reader) (*Makefile, error) {
	m := &Makefile{Vars: map[string]string{}, Recipes: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var (
		targets []string
		pending strings.Builder
	)
	for sc.Scan() {
		line := sc.Text()
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			pending.WriteString(cont)
			pending.WriteByte(' ')
			continue
		}
		pending.WriteString(line)
		line = pending.String()
		pending.Reset()

		if strings.HasPrefix(line, "\t") {
			cmd := strings.TrimLeft(strings.TrimSpace(line), "@-+")
			for _, t := range targets {
				m.Recipes[t] = append(m.Recipes[t], cmd)
			}
			continue
		}
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if a := assignRE.FindStringSubmatch(trimmed); a != nil {
			name, op, val := a[1], a[2], strings.Join(strings.Fields(stripComment(a[3])), " ")
			switch op {
			case "?=":
				if _, ok := m.Vars[name]; !ok {
					m.Vars[name] = val
				}
			case "+=":
				if old := m.Vars[name]; old != "" {
					val = old + " " + val
				}
				m.Vars[name] = val
			default:
				m.Vars[name] = val
			}
			targets = nil
			continue
		}
		if ru := ruleRE.FindStringSubmatch(trimmed); ru != nil {
			targets = strings.Fields(ru[1])
			continue
		}
		targets = nil
	}
	return m, sc.Err()
}

func stripComment(s string) string {
	if i := strings.Index(s, " #"); i >= 0 {
		return s[:i]
	}
	return s
}

// Expand replaces $(NAME) and ${NAME} references to known variables,
// recursively, leaving the names in keep (and unknown names, and function
// calls such as $(shell ...)) as $(NAME).
func (m *Makefile) Expand(s string, keep ...string) string {
	kept := map[string]bool{}
	for _, k := range keep {
		kept[k] = true
	}
	for range 20 { // bounded: a self-referencing variable stops here
		next := refRE.ReplaceAllStringFunc(s, func(ref string) string {
			name := refRE.FindStringSubmatch(ref)[1]
			if v, ok := m.Vars[name]; ok && !kept[name] {
				return v
			}
			return "$(" + name + ")"
		})
		if next == s {
			break
		}
		s = next
	}
	return s
}
