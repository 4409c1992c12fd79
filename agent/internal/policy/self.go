package policy

import (
	"fmt"

	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// Self names the agent's own objects. No bundle may write them, whatever
// the hub sends and whatever the policies allow: an agent that rewrote its
// policy ConfigMap, its RBAC, its ServiceAccount or its Deployment would
// lift the limits the cluster's owner set on it.
type Self struct {
	// Namespace is the agent's namespace.
	Namespace string
	// Name is the name of the agent's Deployment, ServiceAccount and
	// cluster-admin ClusterRoleBinding (deploy/ names them flotilla-agent).
	Name string
	// PolicyConfigMap is the ConfigMap the agent reads its policy from
	// (empty: none).
	PolicyConfigMap string
	// IdentitySecret is the Secret holding the agent's key and
	// certificate (empty: none).
	IdentitySecret string
}

const rbacGroup = "rbac.authorization.k8s.io"

// Check refuses k when it is one of the agent's own objects: in its
// namespace, every Role and RoleBinding, its ServiceAccount, Deployment,
// identity Secret and policy ConfigMap; cluster-wide, a ClusterRoleBinding
// of its name. namespaced says whether k's kind has a namespace.
func (s Self) Check(k manifest.Key, namespaced bool) error {
	what := ""
	switch {
	case !namespaced:
		if k.Group == rbacGroup && k.Kind == "ClusterRoleBinding" && s.Name != "" && k.Name == s.Name {
			what = "the agent's own ClusterRoleBinding"
		}
	case k.Namespace != s.Namespace || s.Namespace == "":
	case k.Group == rbacGroup && (k.Kind == "Role" || k.Kind == "RoleBinding"):
		what = "RBAC in the agent's own namespace " + s.Namespace
	case k.Group == "" && k.Kind == "ServiceAccount" && k.Name == s.Name:
		what = "the agent's own ServiceAccount"
	case k.Group == "apps" && k.Kind == "Deployment" && k.Name == s.Name:
		what = "the agent's own Deployment"
	case k.Group == "" && k.Kind == "ConfigMap" && s.PolicyConfigMap != "" && k.Name == s.PolicyConfigMap:
		what = "the agent's policy ConfigMap"
	case k.Group == "" && k.Kind == "Secret" && s.IdentitySecret != "" && k.Name == s.IdentitySecret:
		what = "the agent's identity Secret"
	}
	if what == "" {
		return nil
	}
	return fmt.Errorf("%s: %w: it is %s, which no bundle may write", k, ErrRefused, what)
}
