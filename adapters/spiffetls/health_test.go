package spiffetls_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/trustchain/trustchain/adapters/dev/spiffeca"
	"github.com/trustchain/trustchain/adapters/spiffetls"
	"github.com/trustchain/trustchain/internal/testkit/logbuf"
)

func issue(tb testing.TB, ca *spiffeca.DevCA, id spiffeid.ID) *x509svid.SVID {
	tb.Helper()
	svid, err := ca.Issue(id)
	if err != nil {
		tb.Fatal(err)
	}
	return svid
}

// TestCheckSVID holds real SVIDs from the dev CA (valid from a minute ago
// for an hour: a 61-minute lifetime) at different moments of their life.
func TestCheckSVID(t *testing.T) {
	ca := newCA(t)
	own := issue(t, ca, serviceC)
	leaf := own.Certificates[0]
	lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
	deadline := leaf.NotAfter.Add(-lifetime / 10) // 6m6s before the end
	tests := []struct {
		name string
		svid *x509svid.SVID
		at   time.Time
		want error
	}{
		{"fresh", own, leaf.NotBefore.Add(2 * time.Minute), nil},
		{"past half-life, renewal due", own, leaf.NotBefore.Add(lifetime / 2), nil},
		{"a second before the renewal deadline", own, deadline.Add(-time.Second), nil},
		{"at the renewal deadline", own, deadline, spiffetls.ErrSVIDRenewalLate},
		{"a second before expiry", own, leaf.NotAfter.Add(-time.Second), spiffetls.ErrSVIDRenewalLate},
		{"at expiry", own, leaf.NotAfter, spiffetls.ErrSVIDExpired},
		{"not yet valid", own, leaf.NotBefore.Add(-time.Second), spiffetls.ErrSVIDNotYetValid},
		{"another workload's", issue(t, ca, serviceB), leaf.NotBefore.Add(2 * time.Minute), spiffetls.ErrNotOwnSVID},
		{"none", nil, leaf.NotBefore.Add(2 * time.Minute), spiffetls.ErrNoSVID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := spiffetls.CheckSVID(tt.svid, serviceC, tt.at)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CheckSVID = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckSVID = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), serviceC.String()) && !strings.Contains(err.Error(), serviceB.String()) {
				t.Errorf("cause %q names no SPIFFE ID", err)
			}
		})
	}
}

// swapSource serves whatever SVID the test gives it.
type swapSource struct {
	mu   sync.Mutex
	svid *x509svid.SVID
	err  error
}

func (s *swapSource) set(svid *x509svid.SVID, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.svid, s.err = svid, err
}

// GetX509SVID may return neither SVID nor error, as a careless source
// might: the monitor must not trip on it.
func (s *swapSource) GetX509SVID() (*x509svid.SVID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.svid, s.err
}

// TestMonitorLogsEachChangeOnceAndRecovers walks a role through a good
// SVID, another workload's, an expired one and a new good one: each state
// is logged once however often it is checked, and the role is ready again
// without a restart.
func TestMonitorLogsEachChangeOnceAndRecovers(t *testing.T) {
	ca := newCA(t)
	first := issue(t, ca, serviceC)
	src := &swapSource{svid: first}
	logs := &logbuf.Buffer{}
	var held []string
	rotations := 0
	mon := spiffetls.NewMonitor(src, serviceC, spiffetls.MonitorHooks{
		SVID:    func(id string, _, _ time.Time) { held = append(held, id) },
		Rotated: func() { rotations++ },
	}, slog.New(slog.NewTextHandler(logs, nil)))
	now := time.Now()
	spiffetls.SetMonitorClock(mon, func() time.Time { return now })

	steps := []struct {
		name string
		svid *x509svid.SVID
		err  error // from the source
		age  time.Duration
		want error
	}{
		{"good", first, nil, 0, nil},
		{"another workload's", issue(t, ca, serviceA), nil, 0, spiffetls.ErrNotOwnSVID},
		{"none", nil, nil, 0, spiffetls.ErrNoSVID},
		{"the source fails", nil, errors.New("source closed"), 0, spiffetls.ErrNoSVID},
		{"renewal overdue", first, nil, 56 * time.Minute, spiffetls.ErrSVIDRenewalLate},
		{"expired", first, nil, 2 * time.Hour, spiffetls.ErrSVIDExpired},
		{"renewed", issue(t, ca, serviceC), nil, 0, nil},
	}
	start := now
	for i, st := range steps {
		src.set(st.svid, st.err)
		now = start.Add(st.age)
		for range 3 {
			if err := mon.Check(context.Background()); !errors.Is(err, st.want) || (st.want == nil) != (err == nil) {
				t.Fatalf("step %q: Check = %v, want %v", st.name, err, st.want)
			}
		}
		if n := len(stateLines(logs.String())); n != i+1 {
			t.Fatalf("step %q: %d log lines so far, want one per state:\n%s", st.name, n, logs)
		}
	}
	lines := stateLines(logs.String())
	if !strings.Contains(lines[0], "SVID good: ready") || !strings.Contains(lines[len(lines)-1], "SVID good: ready") {
		t.Errorf("first and last lines should say ready:\n%s", logs)
	}
	if !strings.Contains(lines[1], "not ready") || !strings.Contains(lines[1], serviceA.String()) {
		t.Errorf("the wrong-SVID line should say not ready and name the ID held:\n%s", lines[1])
	}
	// first, service-a's, first again, the renewed one: four SVIDs held,
	// three replacements.
	if len(held) != 4 || rotations != 3 {
		t.Errorf("held %v with %d rotations, want 4 SVIDs and 3 rotations", held, rotations)
	}
}

// stateLines are the log lines that report readiness, not rotations.
func stateLines(logs string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "ready") {
			out = append(out, l)
		}
	}
	return out
}
