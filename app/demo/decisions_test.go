package demo

import (
	"context"
	"log/slog"
	"testing"

	"github.com/trustchain/trustchain/domain"
)

// TestDecisionsKeepOnePerRole is issue 19's flood of one request id: the
// hops log 10,000 requests that all carry it, and the log holds one
// decision per role, the first, in the chain's order.
func TestDecisionsKeepOnePerRole(t *testing.T) {
	d := newHopDecisions()
	logs := map[domain.Role]*slog.Logger{}
	for _, h := range domain.Chain() {
		logs[h.Role] = slog.New(d.handler(h.Role, slog.DiscardHandler))
	}
	const id = "0123456789abcdef0123456789abcdef"
	for i := range 10_000 {
		status := 200
		if i > 0 {
			status = 401
		}
		for _, role := range []domain.Role{domain.RoleB, domain.RoleC, domain.RoleA} {
			logs[role].Info("request", slog.String("request_id", id), slog.Int("status", status), slog.String("sub", "auth0|alice"))
		}
	}
	got := d.Decisions(context.Background(), id)
	if len(got) != len(domain.Chain()) {
		t.Fatalf("%d decisions for one request id, want one per role: %+v", len(got), got)
	}
	for i, h := range domain.Chain() {
		if got[i].Role != string(h.Role) || got[i].Status != 200 || got[i].Token != "ok" {
			t.Errorf("decision %d = %+v, want %s's first (200, token ok)", i, got[i], h.Role)
		}
	}
}
