package wire

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/trustchain/trustchain/domain"
)

// TestTheTableReadsBothWays: every domain error the server answers with a
// status reads back, at the hop above, as the error the row names for
// that status and code.
func TestTheTableReadsBothWays(t *testing.T) {
	for _, row := range problems {
		t.Run(row.Code+"/"+row.err.Error(), func(t *testing.T) {
			p := ProblemFor(fmt.Errorf("wrapped: %w", row.err))
			if p.Status != row.Status || p.Code != row.Code {
				t.Fatalf("ProblemFor(%v) = %d %s, want %d %s", row.err, p.Status, p.Code, row.Status, row.Code)
			}
			kind, back := UpstreamError(p.Status, p.Code)
			if !errors.Is(back, row.upstream) {
				t.Errorf("status %d reads back as %v, want %v", p.Status, back, row.upstream)
			}
			if want := row.kind; want != KindConnection && kind != want {
				t.Errorf("status %d reads back with kind %q, want %q", p.Status, kind, want)
			}
		})
	}
}

// TestAStatusAloneReadsBackAsItsFirstRow: an answer whose code this table
// does not know (a proxy's 503 page) reads back by its status alone, and a
// 503 is then the source being unavailable, never overloaded.
func TestAStatusAloneReadsBackAsItsFirstRow(t *testing.T) {
	for code, want := range map[string]error{"overloaded": domain.ErrOverloaded, "": domain.ErrSourceUnavailable, "unavailable": domain.ErrSourceUnavailable} {
		if _, got := UpstreamError(http.StatusServiceUnavailable, code); !errors.Is(got, want) {
			t.Errorf("503 %q reads back as %v, want %v", code, got, want)
		}
	}
}
