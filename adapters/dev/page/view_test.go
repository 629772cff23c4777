package page

import (
	"testing"
	"time"
)

func TestHopSummary(t *testing.T) {
	const sa = "spiffe://cluster.local/ns/default/sa/service-a"
	tests := []struct {
		name string
		d    HopDecision
		want string
	}{
		{"gateway accepts", HopDecision{Role: "a", Status: 200, Token: "ok"}, "A checked the token: ok"},
		{"caller allowed", HopDecision{Role: "c", Status: 200, Token: "ok", Peer: sa}, "C checked the token: ok, caller service-a allowed"},
		{"token refused", HopDecision{Role: "a", Status: 401, Token: "expired", Reason: "token expired 3m ago"}, "A checked the token: expired (token expired 3m ago)"},
		{"caller refused before the token", HopDecision{Role: "b", Status: 403, Peer: sa, Reason: "caller not allowed"}, "B answered 403, caller service-a (caller not allowed)"},
		{"peer that is not a service account", HopDecision{Role: "b", Status: 200, Token: "ok", Peer: "spiffe://td/x"}, "B checked the token: ok, caller spiffe://td/x allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.summary(); got != tt.want {
				t.Fatalf("summary = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClaimRows(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rows := claimRows(map[string]any{
		"zeta":        "last",
		"exp":         float64(now.Add(time.Hour).Unix()),
		"permissions": []any{},
		"aud":         []any{"https://api", "https://iss/userinfo"},
		"sub":         "auth0|alice",
		"extra":       map[string]any{"k": true},
	}, now)
	want := []claimRow{
		{"sub", "auth0|alice"},
		{"aud", "https://api, https://iss/userinfo"},
		{"permissions", "(none)"},
		{"exp", "2026-01-02T04:04:05Z (in 1h0m0s)"},
		{"extra", `{"k":true}`},
		{"zeta", "last"},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows = %v, want %v", rows, want)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %v, want %v", i, rows[i], want[i])
		}
	}
}
