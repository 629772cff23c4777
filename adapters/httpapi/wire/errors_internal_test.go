package wire

import (
	"errors"
	"fmt"
	"testing"
)

// TestTheTableReadsBothWays: every domain error the server answers with a
// status reads back, at the hop above, as the error the row names for
// that status. Rows that share a status must agree, or a status alone
// could not be read back.
func TestTheTableReadsBothWays(t *testing.T) {
	for _, row := range problems {
		t.Run(row.Code+"/"+row.err.Error(), func(t *testing.T) {
			p := ProblemFor(fmt.Errorf("wrapped: %w", row.err))
			if p.Status != row.Status || p.Code != row.Code {
				t.Fatalf("ProblemFor(%v) = %d %s, want %d %s", row.err, p.Status, p.Code, row.Status, row.Code)
			}
			kind, back := UpstreamError(p.Status)
			if !errors.Is(back, row.upstream) {
				t.Errorf("status %d reads back as %v, want %v", p.Status, back, row.upstream)
			}
			if want := row.kind; want != KindConnection && kind != want {
				t.Errorf("status %d reads back with kind %q, want %q", p.Status, kind, want)
			}
		})
	}
}
