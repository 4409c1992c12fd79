package buildspec

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrSyntax is wrapped by every parse error of ParseDockerfile.
var ErrSyntax = errors.New("dockerfile syntax")

// Instruction is one Dockerfile instruction after line continuations are
// joined.
type Instruction struct {
	// Line is the 1-based line where the instruction starts.
	Line int
	// Cmd is the instruction keyword in upper case (FROM, COPY, RUN, ...).
	Cmd string
	// Flags are the leading --name=value flags (COPY --from=build).
	Flags map[string]string
	// Args are the arguments: for the JSON (exec) form its elements, for
	// RUN, CMD and ENTRYPOINT in shell form the whole command as one
	// element, otherwise the whitespace-separated words.
	Args []string
	// JSON is true for the exec form (["a", "b"]).
	JSON bool
}

// Stage is one FROM section of a Dockerfile.
type Stage struct {
	Name         string
	Image        string
	Instructions []Instruction
}

// knownCmds are the instructions of the Dockerfile reference.
var knownCmds = map[string]bool{
	"ADD": true, "ARG": true, "CMD": true, "COPY": true, "ENTRYPOINT": true, "ENV": true,
	"EXPOSE": true, "FROM": true, "HEALTHCHECK": true, "LABEL": true, "MAINTAINER": true,
	"ONBUILD": true, "RUN": true, "SHELL": true, "STOPSIGNAL": true, "USER": true,
	"VOLUME": true, "WORKDIR": true,
}

// shellForm are the instructions whose non-JSON form is one shell command.
var shellForm = map[string]bool{"RUN": true, "CMD": true, "ENTRYPOINT": true}

// ParseDockerfile reads a Dockerfile: comments and parser directives are
// skipped, lines ending in a backslash are joined, and each instruction is
// checked to be known, to have arguments, and (after the first ARGs) to
// follow a FROM. Heredocs are not supported.
func ParseDockerfile(r io.Reader) ([]Stage, error) {
	var (
		stages []Stage
		lineNo int
		start  int
		buf    strings.Builder
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	flush := func() error {
		text := strings.TrimSpace(buf.String())
		buf.Reset()
		if text == "" {
			return nil
		}
		in, err := parseInstruction(start, text)
		if err != nil {
			return err
		}
		if in.Cmd == "FROM" {
			st := Stage{Image: in.Args[0]}
			if len(in.Args) == 3 && strings.EqualFold(in.Args[1], "AS") {
				st.Name = in.Args[2]
			} else if len(in.Args) != 1 {
				return fmt.Errorf("line %d: FROM %s: want IMAGE [AS NAME]: %w", in.Line, strings.Join(in.Args, " "), ErrSyntax)
			}
			stages = append(stages, st)
			return nil
		}
		if len(stages) == 0 {
			if in.Cmd != "ARG" {
				return fmt.Errorf("line %d: %s before the first FROM: %w", in.Line, in.Cmd, ErrSyntax)
			}
			return nil
		}
		last := &stages[len(stages)-1]
		last.Instructions = append(last.Instructions, in)
		return nil
	}
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue // comments, also inside continuations, and parser directives
		}
		if buf.Len() == 0 {
			if trimmed == "" {
				continue
			}
			start = lineNo
		}
		if cont, ok := strings.CutSuffix(strings.TrimRight(line, " \t"), `\`); ok {
			buf.WriteString(cont)
			buf.WriteByte(' ')
			continue
		}
		buf.WriteString(line)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if buf.Len() > 0 {
		return nil, fmt.Errorf("line %d: continuation at end of file: %w", start, ErrSyntax)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("no FROM instruction: %w", ErrSyntax)
	}
	return stages, nil
}

func parseInstruction(line int, text string) (Instruction, error) {
	word, rest, _ := strings.Cut(text, " ")
	cmd := strings.ToUpper(strings.TrimSpace(word))
	rest = strings.TrimSpace(rest)
	if !knownCmds[cmd] {
		return Instruction{}, fmt.Errorf("line %d: unknown instruction %q: %w", line, word, ErrSyntax)
	}
	in := Instruction{Line: line, Cmd: cmd, Flags: map[string]string{}}
	for strings.HasPrefix(rest, "--") {
		flag, after, _ := strings.Cut(rest, " ")
		name, val, _ := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
		in.Flags[name] = val
		rest = strings.TrimSpace(after)
	}
	if rest == "" {
		return Instruction{}, fmt.Errorf("line %d: %s has no arguments: %w", line, cmd, ErrSyntax)
	}
	if strings.HasPrefix(rest, "[") {
		var args []string
		if err := json.Unmarshal([]byte(rest), &args); err == nil {
			in.Args, in.JSON = args, true
			return in, nil
		} else if shellForm[cmd] {
			return Instruction{}, fmt.Errorf("line %d: %s: malformed JSON form: %w (%w)", line, cmd, err, ErrSyntax)
		}
	}
	if shellForm[cmd] {
		in.Args = []string{rest}
		return in, nil
	}
	in.Args = strings.Fields(rest)
	if (cmd == "COPY" || cmd == "ADD") && len(in.Args) < 2 {
		return Instruction{}, fmt.Errorf("line %d: %s needs a source and a destination: %w", line, cmd, ErrSyntax)
	}
	return in, nil
}

// Env returns the variables a stage sets with ENV and ARG defaults, in
// order, later ones winning. Values are not expanded.
func (s Stage) Env() map[string]string {
	env := map[string]string{}
	for _, in := range s.Instructions {
		switch in.Cmd {
		case "ENV":
			if len(in.Args) == 2 && !strings.Contains(in.Args[0], "=") {
				env[in.Args[0]] = in.Args[1] // legacy ENV key value
				continue
			}
			for _, kv := range in.Args {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = strings.Trim(v, `"`)
			}
		case "ARG":
			for _, kv := range in.Args {
				if k, v, ok := strings.Cut(kv, "="); ok {
					env[k] = strings.Trim(v, `"`)
				}
			}
		}
	}
	return env
}
