package buildspec

import (
	"fmt"
	"strings"
)

// GoBuild is one `go build` invocation found in a shell command.
type GoBuild struct {
	// Env holds VAR=value assignments written before `go` on the same
	// command.
	Env map[string]string
	// Packages are the package arguments, as written (./hub/cmd/flotilla-hub).
	Packages []string
	// LDFlags is the value of -ldflags, unquoted.
	LDFlags string
	// Trimpath reports -trimpath.
	Trimpath bool
	// Output is the value of -o.
	Output string
}

// goBuildValueFlags are the `go build` flags that take a separate value.
var goBuildValueFlags = map[string]bool{
	"o": true, "p": true, "ldflags": true, "gcflags": true, "asmflags": true, "gccgoflags": true,
	"tags": true, "mod": true, "modfile": true, "buildmode": true, "compiler": true,
	"installsuffix": true, "pkgdir": true, "toolexec": true, "overlay": true, "pgo": true, "C": true,
}

// FindGoBuilds returns every `go build` in the shell command cmd, which may
// chain commands with &&, ||, ; or newlines.
func FindGoBuilds(cmd string) ([]GoBuild, error) {
	words, err := shellWords(cmd)
	if err != nil {
		return nil, err
	}
	var out []GoBuild
	for _, argv := range splitCommands(words) {
		env := map[string]string{}
		for len(argv) > 0 && isAssignment(argv[0]) {
			k, v, _ := strings.Cut(argv[0], "=")
			env[k] = v
			argv = argv[1:]
		}
		if len(argv) < 2 || argv[0] != "go" || argv[1] != "build" {
			continue
		}
		gb := GoBuild{Env: env}
		args := argv[2:]
		for i := 0; i < len(args); i++ {
			a := args[i]
			if !strings.HasPrefix(a, "-") {
				gb.Packages = append(gb.Packages, a)
				continue
			}
			name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if !hasVal && goBuildValueFlags[name] {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("go build: flag -%s needs a value", name)
				}
				i++
				val = args[i]
			}
			switch name {
			case "ldflags":
				gb.LDFlags = val
			case "o":
				gb.Output = val
			case "trimpath":
				gb.Trimpath = !hasVal || val == "true"
			}
		}
		out = append(out, gb)
	}
	return out, nil
}

func isAssignment(w string) bool {
	k, _, ok := strings.Cut(w, "=")
	if !ok || k == "" {
		return false
	}
	for i, r := range k {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// separator marks a command separator in the output of shellWords.
const separator = "\x00;"

// shellWords splits a POSIX shell command into words, honouring single and
// double quotes and backslashes, and returns command separators (&&, ||, ;,
// |, newline) as the separator word. Expansions are left as written.
func shellWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		inTok bool
	)
	end := func() {
		if inTok {
			words = append(words, cur.String())
			cur.Reset()
			inTok = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			inTok = true
			i += j + 1
		case c == '"':
			inTok = true
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated double quote in %q", s)
			}
		case c == '\\' && i+1 < len(s):
			i++
			if s[i] != '\n' {
				cur.WriteByte(s[i])
				inTok = true
			}
		case c == ' ' || c == '\t':
			end()
		case c == '\n' || c == ';' || c == '|' || c == '&':
			end()
			if c == '&' || c == '|' {
				if i+1 < len(s) && s[i+1] == c {
					i++
				}
			}
			words = append(words, separator)
		default:
			cur.WriteByte(c)
			inTok = true
		}
	}
	end()
	return words, nil
}

func splitCommands(words []string) [][]string {
	var out [][]string
	var cur []string
	for _, w := range words {
		if w == separator {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, w)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// NormalizeVars rewrites ${NAME} and $NAME references to the Makefile form
// $(NAME), so values from a Dockerfile and a Makefile compare equal.
func NormalizeVars(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		if s[i+1] == '{' {
			if j := strings.IndexByte(s[i:], '}'); j > 0 {
				b.WriteString("$(" + s[i+2:i+j] + ")")
				i += j
				continue
			}
		}
		j := i + 1
		for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || j > i+1 && s[j] >= '0' && s[j] <= '9') {
			j++
		}
		if j == i+1 {
			b.WriteByte(s[i])
			continue
		}
		b.WriteString("$(" + s[i+1:j] + ")")
		i = j - 1
	}
	return b.String()
}
