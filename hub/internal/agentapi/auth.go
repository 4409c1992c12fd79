package agentapi

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/flotilla-cd/flotilla/hub/internal/pki"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"github.com/flotilla-cd/flotilla/shared/identity"
)

// errRefused is wrapped by every reason admit refuses a certificate.
var errRefused = errors.New("certificate refused")

// certInfo is what admit needs of a verified client certificate.
type certInfo struct {
	Serial              string
	NotBefore, NotAfter time.Time
}

func certInfoOf(c *x509.Certificate) certInfo {
	return certInfo{Serial: c.SerialNumber.Text(16), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC()}
}

// verdict is how a certificate is admitted.
type verdict int

const (
	// admitCurrent: the cluster's current certificate.
	admitCurrent verdict = iota
	// admitPending: the certificate of a renewal, used for the first time;
	// it becomes the current one and the old one is superseded.
	admitPending
	// admitNewer: a certificate this hub issued for the cluster after the
	// one the store names, which the store does not know: the store was
	// restored from a backup taken before a renewal. It becomes current.
	// Only in restore mode.
	admitNewer
)

// adoption is when admit adopts a certificate the store does not name.
type adoption struct {
	// restore: the hub runs in restore mode (Options.RestoreMode).
	restore bool
	// maxLifetime: the longest validity this hub gives a certificate
	// (pki.Lifetime of the configured TTL); a longer one was not issued by
	// this hub's signing path.
	maxLifetime time.Duration
}

// admit decides whether a client certificate the CA verified for cluster c
// may act for it. It is pure; apply records a non-current verdict.
//
// The store names the certificates the hub issued for c: the current one
// and a pending renewal. Any other is refused, with one exception for
// restore mode (the operator restored the store from a backup, which
// forgets renewals made after it): a certificate newer than the ones the
// store names, whose lifetime is no longer than the hub gives, is adopted,
// so that those agents keep working. Outside restore mode a certificate
// signed with a stolen CA key, however new, cannot supersede the real
// agent. It never brings back a certificate a later enrolment superseded:
// the enrolment's certificate is newer than any before it. X.509 times have
// one-second precision; certificates issued in the same second are told
// apart by serial only.
func admit(c store.Cluster, ci certInfo, a adoption) (verdict, error) {
	switch {
	case c.Revoked:
		return 0, fmt.Errorf("%w: cluster %q identity is revoked", errRefused, c.Name)
	case c.CertSerial == "":
		return 0, fmt.Errorf("%w: cluster %q is not enrolled", errRefused, c.Name)
	case ci.Serial == c.CertSerial:
		return admitCurrent, nil
	case ci.Serial == c.PendingSerial:
		return admitPending, nil
	case !c.CertNotBefore.IsZero() && ci.NotBefore.After(c.CertNotBefore) &&
		(c.PendingSerial == "" || ci.NotBefore.After(c.PendingNotBefore)):
		switch {
		case !a.restore:
			return 0, fmt.Errorf("%w: certificate %s of cluster %q is not the one this hub issued last (after restoring the store from a backup, start the hub with --restore-mode)", errRefused, ci.Serial, c.Name)
		case ci.NotAfter.Sub(ci.NotBefore) > a.maxLifetime:
			return 0, fmt.Errorf("%w: certificate %s of cluster %q is valid for %s, longer than this hub issues (%s)", errRefused, ci.Serial, c.Name, ci.NotAfter.Sub(ci.NotBefore), a.maxLifetime)
		}
		return admitNewer, nil
	}
	return 0, fmt.Errorf("%w: certificate %s of cluster %q was superseded by a newer enrolment or renewal", errRefused, ci.Serial, c.Name)
}

// apply records v for ci in c.
func apply(c *store.Cluster, v verdict, ci certInfo) {
	if v == admitCurrent {
		return
	}
	c.CertSerial, c.CertNotBefore, c.CertNotAfter = ci.Serial, ci.NotBefore, ci.NotAfter
	c.PendingSerial, c.PendingNotBefore, c.PendingNotAfter = "", time.Time{}, time.Time{}
}

// authenticate returns the cluster the stream's verified client certificate
// names and that certificate, refusing revoked, superseded, expired and
// unknown identities. Identity comes from the certificate only, never from
// a message field.
func (s *Server) authenticate(ctx context.Context) (string, certInfo, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", certInfo{}, status.Error(codes.Unauthenticated, "no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return "", certInfo{}, errNoClientCert
	}
	leaf := ti.State.VerifiedChains[0][0]
	cluster := leaf.Subject.CommonName
	if len(leaf.Subject.Organization) != 1 || leaf.Subject.Organization[0] != identity.ClusterOrganization || cluster == "" {
		return "", certInfo{}, status.Error(codes.PermissionDenied, "certificate is not a cluster identity")
	}
	ci := certInfoOf(leaf)
	if err := s.check(ctx, cluster, ci); err != nil {
		return "", certInfo{}, err
	}
	return cluster, ci, nil
}

// cachedClusters is a store with a watch cache of the clusters (the
// Kubernetes store of hub replicas): it holds this hub's own writes and
// trails the other replicas' by a watch event, after which the replica
// revalidates the streams it holds (Revalidate, or a removal's Forget).
type cachedClusters interface {
	CachedCluster(ctx context.Context, name string) (store.Cluster, error)
}

// check admits ci for cluster against the store, recording a promotion.
// Every connection checks twice (before the Welcome, and after attaching,
// see Connect); with a watch cache the current certificate is admitted
// from it without a request. What the cache does not admit as current
// (new enrolment or renewal through another replica not there yet,
// revocation) is decided on the API server's copy; a revocation the cache
// does not show yet closes the stream when it arrives, since the stream is
// attached before the second check.
func (s *Server) check(ctx context.Context, cluster string, ci certInfo) error {
	if cs, ok := s.store.(cachedClusters); ok {
		if c, err := cs.CachedCluster(ctx, cluster); err == nil {
			if v, err := admit(c, ci, s.adoption()); err == nil && v == admitCurrent {
				return nil
			}
		}
	}
	c, err := s.store.GetCluster(ctx, cluster)
	if err != nil {
		return storeErr(cluster, err)
	}
	v, err := admit(c, ci, s.adoption())
	if err != nil {
		return status.Error(codes.PermissionDenied, err.Error())
	}
	if v == admitCurrent {
		return nil
	}
	// Decide again inside the transaction: an enrolment may have come in
	// between.
	err = s.store.UpdateCluster(ctx, cluster, func(c *store.Cluster) error {
		v, err := admit(*c, ci, s.adoption())
		if err != nil {
			return err
		}
		apply(c, v, ci)
		return nil
	})
	if err != nil {
		return storeErr(cluster, err)
	}
	if v == admitNewer {
		s.log.Warn("adopted a certificate newer than the stored one; was the store restored from a backup?", "cluster", cluster, "serial", ci.Serial)
	} else {
		s.log.Info("renewed certificate in use", "cluster", cluster, "serial", ci.Serial)
	}
	return nil
}

func (s *Server) adoption() adoption {
	return adoption{restore: s.opts.RestoreMode, maxLifetime: pki.Lifetime(s.opts.CertTTL)}
}

func storeErr(cluster string, err error) error {
	switch {
	case errors.Is(err, errRefused):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, store.ErrNotFound):
		return status.Errorf(codes.PermissionDenied, "cluster %q is not registered", cluster)
	}
	return status.Errorf(codes.Internal, "look up cluster %s: %v", cluster, err)
}
