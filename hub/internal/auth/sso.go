package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/oauth2"

	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// Sessions is the part of the store single sign-on uses: sessions are API
// tokens of a session kind.
type Sessions interface {
	IssueAPIToken(ctx context.Context, spec store.APIToken, now time.Time) (string, store.APIToken, error)
	LookupAPIToken(ctx context.Context, raw string) (store.APIToken, error)
	DeleteAPIToken(ctx context.Context, id string) error
}

var _ Sessions = (store.Store)(nil)

// SSO signs people in through an OpenID Connect provider. The provider is
// discovered on first use (and again after a failed discovery), so a
// provider that is down does not stop the hub; API tokens keep working.
type SSO struct {
	opts     Options
	roles    RoleMap
	secret   string
	sessions Sessions
	client   *http.Client
	log      hclog.Logger
	now      func() time.Time

	mu       sync.Mutex
	provider *oidc.Provider

	// recheckMu serializes Recheck; rechecked holds when this hub last
	// confirmed a session's roles, by session ID.
	recheckMu sync.Mutex
	rechecked map[string]time.Time
}

// New returns single sign-on for opts (which must be Enabled and valid).
func New(opts Options, sessions Sessions, log hclog.Logger) (*SSO, error) {
	deployers, err := ParseDeployerGroups(opts.DeployerGroups)
	if err != nil {
		return nil, err
	}
	s := &SSO{
		rechecked: map[string]time.Time{},
		opts:      opts,
		roles:     RoleMap{AdminGroups: opts.AdminGroups, DeployerGroups: deployers, ReadOnlyGroups: opts.ReadOnlyGroups},
		sessions:  sessions,
		log:       log,
		now:       time.Now,
	}
	if opts.ClientSecretFile != "" {
		b, err := os.ReadFile(opts.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("oidc client secret: %w", err)
		}
		s.secret = strings.TrimSpace(string(b))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("oidc ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("oidc ca file %s: no PEM certificate", opts.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	s.client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	return s, nil
}

// SecureCookies reports whether cookies are Secure (the hub's URL is
// https).
func (s *SSO) SecureCookies() bool { return strings.HasPrefix(s.opts.HubURL, "https://") }

// Routes registers the sign-in endpoints on m.
func (s *SSO) Routes(m *http.ServeMux) {
	m.HandleFunc("GET /auth/info", s.info)
	m.HandleFunc("GET /auth/login", s.login)
	m.HandleFunc("GET /auth/callback", s.callback)
	m.HandleFunc("POST /auth/logout", s.logout)
	m.HandleFunc("POST /auth/cli", s.cliLogin)
}

// clientContext makes go-oidc and oauth2 use the hub's HTTP client for
// the provider.
func (s *SSO) clientContext(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, s.client)
}

// discover returns the provider, reading its discovery document on first
// use.
func (s *SSO) discover(ctx context.Context) (*oidc.Provider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.provider != nil {
		return s.provider, nil
	}
	p, err := oidc.NewProvider(s.clientContext(ctx), s.opts.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover OpenID Connect provider %s: %w", s.opts.Issuer, err)
	}
	s.provider = p
	return p, nil
}

// claims are what the hub reads from an ID token.
type claims struct {
	Subject string
	Email   string
	Groups  []string
}

// verify checks raw as an ID token the provider issued to clientID (its
// signature against the provider's published keys, issuer, audience,
// expiry) and reads its claims.
func (s *SSO) verify(ctx context.Context, p *oidc.Provider, clientID, raw string) (*oidc.IDToken, claims, error) {
	tok, err := p.VerifierContext(s.clientContext(ctx), &oidc.Config{ClientID: clientID, Now: s.now}).Verify(s.clientContext(ctx), raw)
	if err != nil {
		return nil, claims{}, fmt.Errorf("verify ID token: %w", err)
	}
	var all map[string]json.RawMessage
	if err := tok.Claims(&all); err != nil {
		return nil, claims{}, fmt.Errorf("read ID token claims: %w", err)
	}
	c := claims{Subject: tok.Subject}
	if e, ok := all["email"]; ok {
		_ = json.Unmarshal(e, &c.Email)
	}
	if g, ok := all[s.opts.GroupsClaim]; ok {
		if err := json.Unmarshal(g, &c.Groups); err != nil {
			return nil, claims{}, fmt.Errorf("ID token claim %q: want a list of group names: %w", s.opts.GroupsClaim, err)
		}
	}
	return tok, c, nil
}

// ErrNoRole: the person's groups map to no role on this hub.
var ErrNoRole = errors.New("no role")

// startSession maps c's groups to a role and stores a session of kind.
func (s *SSO) startSession(ctx context.Context, c claims, kind string) (string, store.APIToken, error) {
	role, projects, ok := s.roles.Grant(c.Groups)
	if !ok {
		return "", store.APIToken{}, fmt.Errorf("%s (groups %s): %w", personName(c), strings.Join(c.Groups, ", "), ErrNoRole)
	}
	now := s.now()
	spec := store.APIToken{
		Name: personName(c), Role: role, Projects: projects, ExpiresAt: now.Add(s.opts.SessionTTL),
		Kind: kind, Subject: c.Subject, Email: c.Email,
	}
	raw, tok, err := s.sessions.IssueAPIToken(ctx, spec, now)
	if err != nil {
		return "", store.APIToken{}, fmt.Errorf("store session of %s: %w", spec.Name, err)
	}
	s.log.Info("signed in", "person", tok.Name, "subject", tok.Subject, "role", tok.Role, "projects", tok.Projects, "kind", kind, "session", tok.ID)
	return raw, tok, nil
}

// personName is how the hub names a person: their email, else the
// provider's subject.
func personName(c claims) string {
	if c.Email != "" {
		return c.Email
	}
	return "oidc:" + c.Subject
}

func (s *SSO) oauth2Config(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     s.opts.ClientID,
		ClientSecret: s.secret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  strings.TrimSuffix(s.opts.HubURL, "/") + "/auth/callback",
		Scopes:       s.webScopes(),
	}
}

// webScopes are the scopes of the web sign-in: with RolesMaxAge,
// offline_access too, for a refresh token.
func (s *SSO) webScopes() []string {
	sc := append([]string{oidc.ScopeOpenID}, s.opts.Scopes...)
	if s.opts.RolesMaxAge > 0 && !slices.Contains(sc, oidc.ScopeOfflineAccess) {
		sc = append(sc, oidc.ScopeOfflineAccess)
	}
	return sc
}
