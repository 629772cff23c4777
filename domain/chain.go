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
	// the store. It comes from the row order: the next row.
	Calls Role
	// CalledBy is the one role allowed to call this hop, or "" for the edge,
	// which the ingress gateway calls. It comes from the row order: the row
	// before.
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

// chain is the whole topology, from the edge inwards: each row calls the
// next, so who calls whom is the row order and is never written down twice.
// Adding a role is one row here, plus its deploy overlay (README, "Adding a
// role"); everything else (config, wiring, the demo, dev certificates,
// histogram buckets, alerts, mesh policy tests) reads this table.
var chain = linked([]Hop{
	{Role: RoleA, ServiceAccount: "service-a", Envelope: true, Budget: 8 * time.Second},
	{Role: RoleC, ServiceAccount: "service-c", Budget: 6 * time.Second},
	{Role: RoleB, ServiceAccount: "service-b", Budget: 3 * time.Second},
})

// linked fills in Calls and CalledBy from the order of rows.
func linked(rows []Hop) []Hop {
	for i := range rows {
		if i > 0 {
			rows[i].CalledBy = rows[i-1].Role
		}
		if i+1 < len(rows) {
			rows[i].Calls = rows[i+1].Role
		}
	}
	return rows
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
