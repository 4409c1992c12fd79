package auth

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/spf13/pflag"
)

// Options configure single sign-on through an OpenID Connect provider and
// the mapping of its groups to roles. Single sign-on is off while Issuer
// is empty; API tokens work either way.
type Options struct {
	// Issuer is the provider's issuer URL (its discovery document is at
	// Issuer/.well-known/openid-configuration).
	Issuer string
	// ClientID and ClientSecretFile are the hub's confidential client,
	// used by the web UI's sign-in (authorization code with PKCE).
	ClientID         string
	ClientSecretFile string
	// CLIClientID is the public client `flotilla login --sso` signs in as
	// (device authorization grant); empty: the CLI cannot sign in.
	CLIClientID string
	// HubURL is the hub's address as browsers reach it; the provider
	// redirects to HubURL/auth/callback. An https URL makes the cookies
	// Secure.
	HubURL string
	// CAFile holds the CA certificates that verify the provider's TLS
	// certificate (default: the system's).
	CAFile string
	// Scopes are asked for besides openid (default profile, email,
	// groups).
	Scopes []string
	// GroupsClaim is the ID token claim that lists the person's groups.
	GroupsClaim string
	// SessionTTL is how long a sign-in lasts (web and CLI).
	SessionTTL time.Duration
	// RolesMaxAge, when not zero, is how old a session's roles may get
	// before the hub reads the person's groups again (refresh.go); zero:
	// roles are fixed for the session.
	RolesMaxAge time.Duration

	// AdminGroups, DeployerGroups (GROUP=PROJECT) and ReadOnlyGroups map
	// the provider's groups to roles (see RoleMap.Grant). A person in no
	// mapped group cannot sign in.
	AdminGroups    []string
	DeployerGroups []string
	ReadOnlyGroups []string
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{
		Scopes:      []string{"profile", "email", "groups"},
		GroupsClaim: "groups",
		SessionTTL:  12 * time.Hour,
	}
}

// Enabled reports whether single sign-on is configured.
func (o *Options) Enabled() bool { return o.Issuer != "" }

// BindFlags registers the options on fs.
func (o *Options) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Issuer, "oidc-issuer", o.Issuer, "OpenID Connect provider's issuer URL; enables single sign-on for the web UI and `flotilla login --sso`")
	fs.StringVar(&o.ClientID, "oidc-client-id", o.ClientID, "the hub's client ID at the provider (web UI sign-in)")
	fs.StringVar(&o.ClientSecretFile, "oidc-client-secret-file", o.ClientSecretFile, "file holding the hub's client secret at the provider")
	fs.StringVar(&o.CLIClientID, "oidc-cli-client-id", o.CLIClientID, "public client ID the CLI signs in as (device authorization grant)")
	fs.StringVar(&o.HubURL, "oidc-hub-url", o.HubURL, "the hub's URL as browsers reach it (the provider redirects to <url>/auth/callback; https makes cookies Secure)")
	fs.StringVar(&o.CAFile, "oidc-ca-file", o.CAFile, "CA certificates (PEM) that verify the provider's TLS certificate (default: the system's)")
	fs.StringSliceVar(&o.Scopes, "oidc-scopes", o.Scopes, "scopes asked for besides openid")
	fs.StringVar(&o.GroupsClaim, "oidc-groups-claim", o.GroupsClaim, "ID token claim listing the person's groups")
	fs.DurationVar(&o.SessionTTL, "oidc-session-ttl", o.SessionTTL, "how long a single sign-on session lasts (web and CLI)")
	fs.DurationVar(&o.RolesMaxAge, "oidc-roles-max-age", o.RolesMaxAge, "read a signed-in person's groups again when their roles are older than this (web: with the provider's refresh token, asking for offline_access; CLI: by signing in again); a changed role ends the session; 0: roles are fixed for the session")
	fs.StringSliceVar(&o.AdminGroups, "sso-admin-group", o.AdminGroups, "provider group whose members are admins (repeatable)")
	fs.StringSliceVar(&o.DeployerGroups, "sso-deployer-group", o.DeployerGroups, "GROUP=PROJECT: members of GROUP may sync, roll back and pin the apps of PROJECT (repeatable)")
	fs.StringSliceVar(&o.ReadOnlyGroups, "sso-readonly-group", o.ReadOnlyGroups, "provider group whose members may read everything (repeatable)")
}

// Validate checks the options.
func (o *Options) Validate() error {
	if !o.Enabled() {
		return nil
	}
	var errs []error
	if u, err := url.Parse(o.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--oidc-issuer %q: want an http(s) URL", o.Issuer))
	}
	if o.ClientID == "" {
		errs = append(errs, errors.New("--oidc-client-id is required with --oidc-issuer"))
	}
	if u, err := url.Parse(o.HubURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--oidc-hub-url %q: want the hub's http(s) URL as browsers reach it", o.HubURL))
	}
	if o.GroupsClaim == "" {
		errs = append(errs, errors.New("--oidc-groups-claim must not be empty"))
	}
	if o.SessionTTL < time.Minute {
		errs = append(errs, fmt.Errorf("--oidc-session-ttl %s: must be at least 1m", o.SessionTTL))
	}
	if o.RolesMaxAge < 0 {
		errs = append(errs, fmt.Errorf("--oidc-roles-max-age %s: must not be negative", o.RolesMaxAge))
	}
	if _, err := ParseDeployerGroups(o.DeployerGroups); err != nil {
		errs = append(errs, fmt.Errorf("--sso-deployer-group: %w", err))
	}
	if len(o.AdminGroups)+len(o.DeployerGroups)+len(o.ReadOnlyGroups) == 0 {
		errs = append(errs, errors.New("--oidc-issuer needs at least one of --sso-admin-group, --sso-deployer-group, --sso-readonly-group (nobody could sign in)"))
	}
	return errors.Join(errs...)
}
