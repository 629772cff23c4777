package spiffetls

import (
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// ID is the identity Istio and SPIRE's Kubernetes registrar give a workload:
// spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>.
func ID(trustDomain, namespace, serviceAccount string) (spiffeid.ID, error) {
	td, err := spiffeid.TrustDomainFromString(trustDomain)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("workload identity: trust domain %q: %w", trustDomain, err)
	}
	id, err := spiffeid.FromSegments(td, "ns", namespace, "sa", serviceAccount)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("workload identity: namespace %q, service account %q: %w", namespace, serviceAccount, err)
	}
	return id, nil
}

// IngressGatewayID is the identity of Istio's default ingress gateway, the
// caller A sees inside the mesh.
func IngressGatewayID(trustDomain string) (spiffeid.ID, error) {
	return ID(trustDomain, "istio-system", "istio-ingressgateway-service-account")
}
