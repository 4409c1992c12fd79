package gitsource

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"sigs.k8s.io/yaml"
)

// Credential is one repository credential template, as Argo CD's: it is
// used for every repo URL under URL (same scheme, host and port, and URL's
// path a whole-segment prefix of the repo's), the longest matching URL
// winning. Secrets are read from files at each use, so that they can come
// from mounted Secrets and rotate.
//
// A token is only ever sent over https; an SSH key only to ssh and
// scp-style URLs whose host key is known. A Credential with an empty URL
// may only hold an SSH key: it is used for every ssh repo that no other
// template matches (an SSH key is not disclosed to the server it
// authenticates to, and the host must be in known_hosts).
type Credential struct {
	// URL prefix, for example https://github.com/my-org/ or
	// ssh://git@github.com/my-org/ (or git@github.com:my-org/).
	URL string `json:"url"`
	// Username for https basic auth; default "git".
	Username string `json:"username,omitempty"`
	// TokenFile holds an https token or password.
	TokenFile string `json:"tokenFile,omitempty"`
	// SSHKeyFile holds a PEM private key for ssh.
	SSHKeyFile string `json:"sshKeyFile,omitempty"`
	// KnownHostsFile verifies ssh host keys; empty uses the system's.
	KnownHostsFile string `json:"knownHostsFile,omitempty"`
}

// CredentialsFile is the format of the hub's --git-credentials-file.
type CredentialsFile struct {
	Credentials []Credential `json:"credentials"`
}

// LoadCredentials reads a credentials file (YAML or JSON) and checks it.
func LoadCredentials(path string) ([]Credential, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("git credentials file: %w", err)
	}
	var f CredentialsFile
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		return nil, fmt.Errorf("git credentials file %s: %w", path, err)
	}
	if _, err := compileCredentials(f.Credentials); err != nil {
		return nil, fmt.Errorf("git credentials file %s: %w", path, err)
	}
	return f.Credentials, nil
}

// credentials are the templates with their parsed prefixes.
type credentials struct {
	list []Credential
	locs []location
}

func compileCredentials(list []Credential) (*credentials, error) {
	cs := &credentials{list: list, locs: make([]location, len(list))}
	var errs []error
	for i, c := range list {
		loc, err := c.check()
		if err != nil {
			errs = append(errs, fmt.Errorf("credential %d (%s): %w", i+1, Redact(c.URL), err))
		}
		cs.locs[i] = loc
	}
	return cs, errors.Join(errs...)
}

func (c Credential) check() (location, error) {
	token, key := c.TokenFile != "", c.SSHKeyFile != ""
	switch {
	case token == key:
		return location{}, errors.New("needs exactly one of a token file or an SSH key file")
	case c.URL == "" && key:
		return location{scheme: "ssh", host: "*"}, nil
	case c.URL == "":
		return location{}, errors.New("a token needs a URL prefix: it is sent only to repos under it")
	}
	if strings.Contains(c.URL, "@") && !strings.HasPrefix(strings.ToLower(c.URL), "ssh") && !key {
		return location{}, errors.New("the URL prefix must not hold credentials")
	}
	loc, err := parseLocation(c.URL)
	if err != nil {
		return location{}, err
	}
	switch {
	case loc.scheme == "http":
		return location{}, errors.New("credentials are never sent over plain http: use an https URL prefix")
	case loc.scheme == "https" && !token:
		return location{}, errors.New("an https prefix takes a token file")
	case loc.scheme == "ssh" && !key:
		return location{}, errors.New("an ssh prefix takes an SSH key file")
	case loc.scheme != "https" && loc.scheme != "ssh":
		return location{}, fmt.Errorf("scheme %q: credentials are for https and ssh repos", loc.scheme)
	case loc.host == "":
		return location{}, errors.New("the URL prefix has no host")
	}
	return loc, nil
}

// match returns the template for repoURL, or nil: the matching prefix with
// the longest path, else (for ssh) the template with no URL.
func (cs *credentials) match(repoURL string) *Credential {
	if cs == nil {
		return nil
	}
	loc, err := parseLocation(repoURL)
	if err != nil {
		return nil
	}
	best, bestLen, fallback := -1, -1, -1
	for i, p := range cs.locs {
		switch {
		case p.host == "*" && loc.scheme == "ssh":
			if fallback < 0 {
				fallback = i
			}
		case p.host != "*" && loc.under(p) && len(p.path) > bestLen:
			best, bestLen = i, len(p.path)
		}
	}
	if best < 0 {
		best = fallback
	}
	if best < 0 {
		return nil
	}
	return &cs.list[best]
}

// authFor returns the auth method for repoURL, or nil for anonymous access
// (no template matches, or the repo is not https or ssh).
func (cs *credentials) authFor(repoURL string) (transport.AuthMethod, error) {
	c := cs.match(repoURL)
	if c == nil {
		return nil, nil
	}
	loc, err := parseLocation(repoURL)
	if err != nil {
		return nil, nil
	}
	switch {
	case loc.scheme == "https" && c.TokenFile != "":
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("git token file: %w", err)
		}
		user := c.Username
		if user == "" {
			user = "git"
		}
		return &http.BasicAuth{Username: user, Password: strings.TrimSpace(string(b))}, nil
	case loc.scheme == "ssh" && c.SSHKeyFile != "":
		ep, err := transport.NewEndpoint(repoURL)
		if err != nil {
			return nil, err
		}
		user := ep.User
		if user == "" {
			user = "git"
		}
		keys, err := ssh.NewPublicKeysFromFile(user, c.SSHKeyFile, "")
		if err != nil {
			return nil, fmt.Errorf("ssh key %s: %w", c.SSHKeyFile, err)
		}
		if c.KnownHostsFile != "" {
			cb, err := ssh.NewKnownHostsCallback(c.KnownHostsFile)
			if err != nil {
				return nil, fmt.Errorf("known hosts %s: %w", c.KnownHostsFile, err)
			}
			keys.HostKeyCallback = cb
		}
		return keys, nil
	}
	return nil, nil
}

// BasicAuth returns the username and token of the credential template that
// matches an https URL (for Helm chart repositories, which share the git
// credentials file), or ok false when none does.
func (m *Manager) BasicAuth(url string) (user, pass string, ok bool, err error) {
	c := m.creds.match(url)
	if c == nil || c.TokenFile == "" {
		return "", "", false, nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", "", false, fmt.Errorf("token file of %s: %w", c.URL, err)
	}
	user = c.Username
	if user == "" {
		user = "git"
	}
	return user, strings.TrimSpace(string(b)), true, nil
}

// CABundle returns the extra CA certificates (PEM) trusted for https
// repositories, or nil.
func (m *Manager) CABundle() []byte { return m.ca }
