package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// policyKey hashes what, besides the rendered objects, goes into a bundle.
func policyKey(p *apiv1alpha1.SyncPolicy, a *app.Application) string {
	b, _ := json.Marshal(struct {
		P *apiv1alpha1.SyncPolicy
		I []app.IgnoreDifference
	}{p, a.Spec.IgnoreDifferences})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
