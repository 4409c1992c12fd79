package policy

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// ErrRefused is wrapped by every refusal of the cluster-side policy.
var ErrRefused = errors.New("refused by the cluster's policy")

// ConfigMap keys. Lists are separated by commas or newlines.
const (
	KeyNamespaces    = "namespaces"    // namespace globs objects may be in (absent: any)
	KeyAllowKinds    = "allowKinds"    // kinds that may be applied (absent: any)
	KeyDenyKinds     = "denyKinds"     // kinds that may not be applied
	KeyClusterScoped = "clusterScoped" // "true"/"false": may cluster-scoped objects be created (absent: true)
)

// Policy is one set of limits. Kinds are written "group/Kind" ("Kind" for
// the core group); group and kind are globs ("*/ClusterRole*",
// "rbac.authorization.k8s.io/*"). The zero Policy allows everything.
type Policy struct {
	// Source names where the policy comes from, in messages ("flags",
	// "ConfigMap flotilla-system/flotilla-agent-policy").
	Source string
	// Namespaces are globs of the namespaces namespaced objects may be
	// in; empty: any.
	Namespaces []string
	// AllowKinds, when set, are the only kinds that may be applied.
	AllowKinds []string
	// DenyKinds may not be applied.
	DenyKinds []string
	// NoClusterScoped forbids cluster-scoped objects.
	NoClusterScoped bool
	// Broken is set when the policy could not be read: everything is
	// refused with this reason (fail closed).
	Broken string
}

// Empty reports whether p allows everything.
func (p Policy) Empty() bool {
	return len(p.Namespaces) == 0 && len(p.AllowKinds) == 0 && len(p.DenyKinds) == 0 && !p.NoClusterScoped && p.Broken == ""
}

// Validate reports a malformed glob.
func (p Policy) Validate() error {
	for _, ns := range p.Namespaces {
		if err := manifest.ValidNamespacePattern(ns); err != nil {
			return fmt.Errorf("%s: %s: %w", p.Source, KeyNamespaces, err)
		}
	}
	for key, l := range map[string][]string{KeyAllowKinds: p.AllowKinds, KeyDenyKinds: p.DenyKinds} {
		for _, k := range l {
			g, kind := splitKind(k)
			for _, pat := range []string{g, kind} {
				if _, err := path.Match(pat, ""); err != nil || kind == "" {
					return fmt.Errorf("%s: %s: %q is not group/Kind", p.Source, key, k)
				}
			}
		}
	}
	return nil
}

func splitKind(s string) (group, kind string) {
	if i := strings.LastIndex(s, "/"); i >= 0 {
		return s[:i], s[i+1:]
	}
	return "", s
}

func kindMatches(rule, group, kind string) bool {
	g, k := splitKind(rule)
	okG, _ := path.Match(g, group)
	okK, _ := path.Match(k, kind)
	return okG && okK
}

// Check refuses an object the policy does not allow. k is its key as it
// will be applied (a namespaced object carries its namespace); namespaced
// says whether its kind has one. The error names the object, the rule and
// where the policy comes from.
func (p Policy) Check(k manifest.Key, namespaced bool) error {
	if p.Broken != "" {
		return fmt.Errorf("%s: %w: %s", k, ErrRefused, p.Broken)
	}
	name := k.Kind
	if k.Group != "" {
		name = k.Group + "/" + k.Kind
	}
	for _, r := range p.DenyKinds {
		if kindMatches(r, k.Group, k.Kind) {
			return fmt.Errorf("%s: %w: kind %s is denied by %s %s (%s)", k, ErrRefused, name, p.Source, KeyDenyKinds, r)
		}
	}
	if len(p.AllowKinds) > 0 {
		ok := false
		for _, r := range p.AllowKinds {
			ok = ok || kindMatches(r, k.Group, k.Kind)
		}
		if !ok {
			return fmt.Errorf("%s: %w: kind %s is not in %s %s", k, ErrRefused, name, p.Source, KeyAllowKinds)
		}
	}
	switch {
	case !namespaced && p.NoClusterScoped:
		return fmt.Errorf("%s: %w: it is cluster-scoped and %s sets %s=false", k, ErrRefused, p.Source, KeyClusterScoped)
	case namespaced && len(p.Namespaces) > 0 && !manifest.NamespaceAllowed(k.Namespace, p.Namespaces):
		return fmt.Errorf("%s: %w: namespace %s is not in %s %s (%s)", k, ErrRefused, k.Namespace, p.Source, KeyNamespaces, strings.Join(p.Namespaces, ", "))
	}
	return nil
}

// FromData reads a policy from a ConfigMap's data. A malformed entry is an
// error (the caller fails closed).
func FromData(source string, data map[string]string) (Policy, error) {
	p := Policy{Source: source}
	p.Namespaces = list(data[KeyNamespaces])
	p.AllowKinds = list(data[KeyAllowKinds])
	p.DenyKinds = list(data[KeyDenyKinds])
	if v, ok := data[KeyClusterScoped]; ok && strings.TrimSpace(v) != "" {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return p, fmt.Errorf("%s: %s: %q is not true or false", source, KeyClusterScoped, v)
		}
		p.NoClusterScoped = !b
	}
	for k := range data {
		switch k {
		case KeyNamespaces, KeyAllowKinds, KeyDenyKinds, KeyClusterScoped:
		default:
			return p, fmt.Errorf("%s: unknown key %q (known: %s, %s, %s, %s)", source, k, KeyNamespaces, KeyAllowKinds, KeyDenyKinds, KeyClusterScoped)
		}
	}
	return p, p.Validate()
}

func list(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Set holds the policies in force (from flags and from the ConfigMap); an
// object must pass every one. Safe for concurrent use; Gen changes with
// every Update, so that holders of bundles planned under older policies
// plan them again.
type Set struct {
	self     atomic.Pointer[Self]
	mu       sync.Mutex
	policies map[string]Policy
	cur      atomic.Pointer[[]Policy]
	gen      atomic.Uint64
	onChange func()
}

// NewSet returns an empty Set (everything allowed).
func NewSet() *Set {
	s := &Set{policies: map[string]Policy{}}
	s.cur.Store(&[]Policy{})
	return s
}

// OnChange registers f, called after each Update.
func (s *Set) OnChange(f func()) {
	s.mu.Lock()
	s.onChange = f
	s.mu.Unlock()
}

// Update sets the policy of one source (replacing its previous one).
func (s *Set) Update(p Policy) {
	s.mu.Lock()
	s.policies[p.Source] = p
	l := make([]Policy, 0, len(s.policies))
	for _, q := range s.policies {
		if !q.Empty() {
			l = append(l, q)
		}
	}
	s.cur.Store(&l)
	s.gen.Add(1)
	f := s.onChange
	s.mu.Unlock()
	if f != nil {
		f()
	}
}

// Protect makes the Set refuse the agent's own objects (Self.Check),
// before and whatever its policies say.
func (s *Set) Protect(self Self) {
	s.self.Store(&self)
}

// Gen is the number of Updates so far.
func (s *Set) Gen() uint64 {
	if s == nil {
		return 0
	}
	return s.gen.Load()
}

// Check refuses the agent's own objects (Protect) and any object a policy
// refuses (nil Set: none).
func (s *Set) Check(k manifest.Key, namespaced bool) error {
	if s == nil {
		return nil
	}
	if self := s.self.Load(); self != nil {
		if err := self.Check(k, namespaced); err != nil {
			return err
		}
	}
	for _, p := range *s.cur.Load() {
		if err := p.Check(k, namespaced); err != nil {
			return err
		}
	}
	return nil
}

// NamespaceAllowed reports whether every policy in force allows objects in
// namespace ns (nil Set: yes). A broken policy allows none.
func (s *Set) NamespaceAllowed(ns string) bool {
	if s == nil {
		return true
	}
	for _, p := range *s.cur.Load() {
		if p.Broken != "" || (len(p.Namespaces) > 0 && !manifest.NamespaceAllowed(ns, p.Namespaces)) {
			return false
		}
	}
	return true
}
