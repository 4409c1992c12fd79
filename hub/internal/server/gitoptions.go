package server

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
)

// GitOptions configure how the hub reaches git repositories: credentials
// bound to URL prefixes, the allowed schemes, deadlines and size limits.
type GitOptions struct {
	// CredentialsFile lists credential templates (see
	// gitsource.CredentialsFile).
	CredentialsFile string
	// TokenFile, Username and TokenURL are one https credential template
	// given by flags: the token is sent only to repos under TokenURL.
	Username  string
	TokenFile string
	TokenURL  string
	// SSHKeyFile and KnownHosts are used for every ssh repo that no
	// template of CredentialsFile matches.
	SSHKeyFile string
	KnownHosts string
	// CAFile holds extra CA certificates for https repos.
	CAFile string
	// AllowInsecureHTTP lets http:// repos be fetched (never with
	// credentials).
	AllowInsecureHTTP bool

	ListTimeout     time.Duration
	FetchTimeout    time.Duration
	MaxFetchSize    string // a quantity, e.g. 512Mi
	RefreshInterval time.Duration
	// MaxCheckoutFileSize and MaxCheckoutSize bound the files of one
	// checkout (quantities; 0: no limit).
	MaxCheckoutFileSize string
	MaxCheckoutSize     string
}

// DefaultGitOptions returns the defaults.
func DefaultGitOptions() GitOptions {
	return GitOptions{
		ListTimeout:     gitsource.DefaultListTimeout,
		FetchTimeout:    gitsource.DefaultFetchTimeout,
		MaxFetchSize:    "512Mi",
		RefreshInterval: gitsource.DefaultRefreshInterval,

		MaxCheckoutFileSize: "64Mi",
		MaxCheckoutSize:     "512Mi",
	}
}

// BindFlags registers the options on fs.
func (o *GitOptions) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.CredentialsFile, "git-credentials-file", o.CredentialsFile, "YAML file of git credential templates: credentials: [{url: https://host/org/, username, tokenFile} or {url: ssh://git@host/org/, sshKeyFile, knownHostsFile}]; the longest matching URL prefix wins")
	fs.StringVar(&o.Username, "git-username", o.Username, "username sent with --git-token-file (default git)")
	fs.StringVar(&o.TokenFile, "git-token-file", o.TokenFile, "file holding an HTTPS token or password for git, sent only to repos under --git-token-url")
	fs.StringVar(&o.TokenURL, "git-token-url", o.TokenURL, "https URL prefix (for example https://github.com/my-org/) of the repos --git-token-file is sent to")
	fs.StringVar(&o.SSHKeyFile, "git-ssh-key-file", o.SSHKeyFile, "file holding an SSH private key for ssh repos no credential template matches")
	fs.StringVar(&o.KnownHosts, "git-known-hosts", o.KnownHosts, "known_hosts file for --git-ssh-key-file")
	fs.StringVar(&o.CAFile, "git-ca-file", o.CAFile, "PEM file of CA certificates trusted for https repos, besides the system's")
	fs.BoolVar(&o.AllowInsecureHTTP, "allow-insecure-http-repos", o.AllowInsecureHTTP, "fetch http:// repos (never with credentials); off, they are refused")
	fs.DurationVar(&o.ListTimeout, "git-list-timeout", o.ListTimeout, "deadline of one ref listing of a repo")
	fs.DurationVar(&o.FetchTimeout, "git-fetch-timeout", o.FetchTimeout, "deadline of one fetch of a repo")
	fs.StringVar(&o.MaxFetchSize, "git-max-fetch-size", o.MaxFetchSize, "largest pack one fetch may bring, and largest object in it (inflated), for example 512Mi; 0: no limit")
	fs.StringVar(&o.MaxCheckoutFileSize, "checkout-max-file-size", o.MaxCheckoutFileSize, "largest file a checkout of a commit writes, checked before it is read, for example 64Mi; 0: no limit")
	fs.StringVar(&o.MaxCheckoutSize, "checkout-max-size", o.MaxCheckoutSize, "largest sum of the files of one checkout of a commit, for example 512Mi; 0: no limit")
	fs.DurationVar(&o.RefreshInterval, "git-refresh-interval", o.RefreshInterval, "shortest time between two ref listings of one repo asked for by webhooks or the API; more requests in between share one (a push webhook naming a commit the hub lacks is served at once)")
}

// Validate checks the options and loads what they name.
func (o *GitOptions) Validate() error {
	_, err := o.gitsource()
	return err
}

// gitsource turns the options into the git manager's.
func (o *GitOptions) gitsource() (gitsource.Options, error) {
	var errs []error
	g := gitsource.Options{
		CAFile:            o.CAFile,
		AllowInsecureHTTP: o.AllowInsecureHTTP,
		ListTimeout:       o.ListTimeout,
		FetchTimeout:      o.FetchTimeout,
		RefreshInterval:   o.RefreshInterval,
	}
	if o.ListTimeout <= 0 || o.FetchTimeout <= 0 || o.RefreshInterval <= 0 {
		errs = append(errs, errors.New("--git-list-timeout, --git-fetch-timeout and --git-refresh-interval must be positive"))
	}
	q, err := resource.ParseQuantity(o.MaxFetchSize)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("--git-max-fetch-size %q: %w", o.MaxFetchSize, err))
	case q.Sign() < 0:
		errs = append(errs, fmt.Errorf("--git-max-fetch-size %q: must not be negative", o.MaxFetchSize))
	case q.IsZero():
		g.MaxFetchBytes = -1
	default:
		g.MaxFetchBytes = q.Value()
	}
	for _, l := range []struct {
		flag, value string
		out         *int64
	}{
		{"--checkout-max-file-size", o.MaxCheckoutFileSize, &g.Checkout.MaxFileSize},
		{"--checkout-max-size", o.MaxCheckoutSize, &g.Checkout.MaxSize},
	} {
		q, err := resource.ParseQuantity(l.value)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s %q: %w", l.flag, l.value, err))
		case q.Sign() < 0:
			errs = append(errs, fmt.Errorf("%s %q: must not be negative", l.flag, l.value))
		case q.IsZero():
			*l.out = -1
		default:
			*l.out = q.Value()
		}
	}
	if o.CredentialsFile != "" {
		creds, err := gitsource.LoadCredentials(o.CredentialsFile)
		if err != nil {
			errs = append(errs, err)
		}
		g.Credentials = append(g.Credentials, creds...)
	}
	switch {
	case o.TokenFile != "" && o.TokenURL == "":
		errs = append(errs, errors.New("--git-token-file needs --git-token-url: the https URL prefix of the repos the token is for (it is never sent to other hosts)"))
	case o.TokenFile != "":
		g.Credentials = append(g.Credentials, gitsource.Credential{URL: o.TokenURL, Username: o.Username, TokenFile: o.TokenFile})
	case o.TokenURL != "":
		errs = append(errs, errors.New("--git-token-url is set without --git-token-file"))
	}
	if o.SSHKeyFile != "" {
		g.Credentials = append(g.Credentials, gitsource.Credential{SSHKeyFile: o.SSHKeyFile, KnownHostsFile: o.KnownHosts})
	}
	if err := g.Validate(); err != nil {
		errs = append(errs, err)
	}
	return g, errors.Join(errs...)
}
