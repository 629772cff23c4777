package domain

import "time"

// Role names one hop of the chain; the binary serves one with --role.
type Role string

// The chain's roles, from the public edge inwards.
const (
	RoleA Role = "a" // the gateway, behind the ingress
	RoleC Role = "c" // the middle hop
	RoleB Role = "b" // reads the catalogue from the store
)

// Hop is one row of the chain's topology: who a role is, whom it calls and
// who may call it.
type Hop struct {
	Role Role
	// ServiceAccount is the workload's Kubernetes service account. It names
	// the workload's SPIFFE ID, its Service and its deploy overlay.
	ServiceAccount string
	// Calls is the role this hop forwards to, or "" for the hop that reads
	// the store.
	Calls Role
	// CalledBy is the one role allowed to call this hop, or "" for the edge,
	// which the ingress gateway calls.
	CalledBy Role
	// Envelope makes the hop wrap its answer in the gateway's envelope.
	Envelope bool
	// Budget is the default time for one call to the next hop or, on the
	// hop that reads the store, for one query. Each budget is shorter than
	// the one of the hop above, so a slow hop surfaces as a timeout one
	// level up, never as a hang at the edge.
	Budget time.Duration
}

// ReadsStore reports whether the hop answers from the store rather than by
// calling another hop.
func (h Hop) ReadsStore() bool { return h.Calls == "" }

// IsEdge reports whether the hop faces the ingress gateway.
func (h Hop) IsEdge() bool { return h.CalledBy == "" }

// chain is the whole topology. Adding a role is one row here, plus its
// deploy overlay; everything else (config, wiring, the demo, dev
// certificates, mesh policy tests) reads this table.
var chain = []Hop{
	{Role: RoleA, ServiceAccount: "service-a", Calls: RoleC, Envelope: true, Budget: 8 * time.Second},
	{Role: RoleC, ServiceAccount: "service-c", Calls: RoleB, CalledBy: RoleA, Budget: 6 * time.Second},
	{Role: RoleB, ServiceAccount: "service-b", CalledBy: RoleC, Budget: 3 * time.Second},
}

// Chain returns the hops from the edge inwards (A, C, B). The slice is the
// caller's own.
func Chain() []Hop { return append([]Hop(nil), chain...) }

// HopOf returns the row for role.
func HopOf(role Role) (Hop, bool) {
	for _, h := range chain {
		if h.Role == role {
			return h, true
		}
	}
	return Hop{}, false
}
