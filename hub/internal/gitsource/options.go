package gitsource

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// Defaults of the network limits.
const (
	DefaultListTimeout     = 15 * time.Second
	DefaultFetchTimeout    = 60 * time.Second
	DefaultMaxFetchBytes   = 512 << 20
	DefaultRefreshInterval = time.Second
)

// Options configure a Manager. Zero values take the defaults above; the
// zero scheme policy refuses plain http.
type Options struct {
	// Dir holds the mirrors and checkouts.
	Dir string
	// PollInterval between ref listings of each repo; default 30s. Each poll
	// waits a further random jitter of up to 10% of the interval.
	PollInterval time.Duration
	// RefreshInterval is the shortest time between two ref listings of one
	// repo asked for by Refresh (webhooks, the API); more Refresh calls in
	// between are served by one listing. Default 1s.
	RefreshInterval time.Duration
	// Credentials are the repository credential templates (longest URL
	// prefix wins); a repo no template matches is fetched anonymously.
	Credentials []Credential
	// CAFile holds PEM certificates trusted for https repos besides the
	// system's.
	CAFile string
	// AllowInsecureHTTP lets http:// repos be fetched (never with
	// credentials). Off: they are refused like file:// URLs.
	AllowInsecureHTTP bool
	// ListTimeout bounds one ref listing; default 15s.
	ListTimeout time.Duration
	// FetchTimeout bounds one fetch; default 60s.
	FetchTimeout time.Duration
	// MaxFetchBytes bounds what one fetch may bring: the pack's size and
	// the inflated size of each object in it (and of what each delta
	// builds). Default 512 MiB; negative: no limit.
	MaxFetchBytes int64
	// Checkout bounds the files one checkout writes (defaults
	// DefaultMaxFileSize per file, DefaultMaxCheckoutSize in all).
	Checkout CheckoutLimits
	// OnPoll, when set, is called after every poll of a repo (metrics),
	// with the repo's URL redacted.
	OnPoll func(repoURL string, d time.Duration, err error)
}

func (o *Options) defaults() {
	if o.PollInterval <= 0 {
		o.PollInterval = 30 * time.Second
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = DefaultRefreshInterval
	}
	if o.ListTimeout <= 0 {
		o.ListTimeout = DefaultListTimeout
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = DefaultFetchTimeout
	}
	switch {
	case o.MaxFetchBytes == 0:
		o.MaxFetchBytes = DefaultMaxFetchBytes
	case o.MaxFetchBytes < 0:
		o.MaxFetchBytes = 0
	}
}

// Validate checks the credential templates and the CA file.
func (o Options) Validate() error {
	var errs []error
	if _, err := compileCredentials(o.Credentials); err != nil {
		errs = append(errs, err)
	}
	if _, err := o.caBundle(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// caBundle reads CAFile and checks that it holds certificates.
func (o Options) caBundle() ([]byte, error) {
	if o.CAFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(o.CAFile)
	if err != nil {
		return nil, fmt.Errorf("git CA file: %w", err)
	}
	n := 0
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err == nil && blk.Type == "CERTIFICATE" {
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("git CA file %s: no PEM certificate in it", o.CAFile)
	}
	return b, nil
}
