package liveview

import (
	"context"
	"encoding/json"
	"fmt"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// manifest answers MANIFEST: the live object without managedFields, a
// Secret's values redacted here, so that they never leave the cluster.
func (s *Server) manifest(ctx context.Context, app string, ref *apiv1alpha1.ObjectRef) (*apiv1alpha1.LiveResponse, error) {
	_, n, err := s.lookup(ctx, app, ref)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(manifest.Redact(n.obj).Object)
	if err != nil {
		return nil, fmt.Errorf("%s: encode: %w", describe(n.ref), err)
	}
	return &apiv1alpha1.LiveResponse{ManifestJson: b}, nil
}
