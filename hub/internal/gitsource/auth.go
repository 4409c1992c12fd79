package gitsource

import (
	"fmt"
	"os"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// Credentials are the secrets used to reach repositories. Values are read
// from files so that they can come from mounted Secrets; the environment
// variables FLOTILLA_GIT_TOKEN and FLOTILLA_GIT_USERNAME are used when no
// token file is given.
type Credentials struct {
	// Username for HTTPS basic auth; default "git".
	Username string
	// TokenFile holds an HTTPS token or password.
	TokenFile string
	// SSHKeyFile holds a PEM private key for ssh:// and scp-style URLs.
	SSHKeyFile string
	// SSHKnownHostsFile verifies SSH host keys; empty uses the system's.
	SSHKnownHostsFile string
}

// authFor returns the auth method for repoURL, or nil for anonymous access.
func (c Credentials) authFor(repoURL string) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(repoURL)
	if err != nil {
		return nil, fmt.Errorf("repo %s: %w", repoURL, err)
	}
	switch ep.Protocol {
	case "ssh":
		if c.SSHKeyFile == "" {
			return nil, nil
		}
		user := ep.User
		if user == "" {
			user = "git"
		}
		keys, err := ssh.NewPublicKeysFromFile(user, c.SSHKeyFile, "")
		if err != nil {
			return nil, fmt.Errorf("ssh key %s: %w", c.SSHKeyFile, err)
		}
		if c.SSHKnownHostsFile != "" {
			cb, err := ssh.NewKnownHostsCallback(c.SSHKnownHostsFile)
			if err != nil {
				return nil, fmt.Errorf("known hosts %s: %w", c.SSHKnownHostsFile, err)
			}
			keys.HostKeyCallback = cb
		}
		return keys, nil
	case "http", "https":
		token := os.Getenv("FLOTILLA_GIT_TOKEN")
		if c.TokenFile != "" {
			b, err := os.ReadFile(c.TokenFile)
			if err != nil {
				return nil, fmt.Errorf("git token file: %w", err)
			}
			token = strings.TrimSpace(string(b))
		}
		if token == "" {
			return nil, nil
		}
		user := c.Username
		if user == "" {
			user = os.Getenv("FLOTILLA_GIT_USERNAME")
		}
		if user == "" {
			user = "git"
		}
		return &http.BasicAuth{Username: user, Password: token}, nil
	}
	return nil, nil
}
