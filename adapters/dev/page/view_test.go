package page

import (
	"testing"
	"time"
)

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
