package page

import (
	"strings"
	"testing"
)

// TestPicture draws the chain for each kind of outcome and checks each
// box's verdict, in order: user, ingress, A, C, B, store.
func TestPicture(t *testing.T) {
	const (
		sa = "spiffe://cluster.local/ns/default/sa/service-a"
		sc = "spiffe://cluster.local/ns/default/sa/service-c"
	)
	ok := []HopDecision{
		{Role: "a", Status: 200, Token: "ok"},
		{Role: "c", Status: 200, Token: "ok", Peer: sa},
		{Role: "b", Status: 200, Token: "ok", Peer: sc},
	}
	tests := []struct {
		name    string
		off     bool
		res     *callResult
		hops    []HopDecision
		want    []verdict
		wantBox string // text the refusing box shows, lines and reason
	}{
		{"before any call", false, nil, nil,
			[]verdict{idle, idle, idle, idle, idle, idle}, ""},
		{"the whole chain lets it through", false, &callResult{Kind: callWithToken, Status: 200}, ok,
			[]verdict{pass, idle, pass, pass, pass, pass}, ""},
		{"A refuses a missing token", false, &callResult{Kind: callNoToken, Status: 401},
			[]HopDecision{{Role: "a", Status: 401, Token: "missing", Reason: "missing"}},
			[]verdict{refuse, idle, refuse, idle, idle, idle}, "✗ no token"},
		{"B refuses its caller; C and A pass the refusal on", false, &callResult{Kind: callWithToken, Status: 403}, []HopDecision{
			{Role: "a", Status: 403, Token: "ok", Reason: "upstream_forbidden"},
			{Role: "c", Status: 403, Token: "ok", Peer: sa, Reason: "upstream_forbidden"},
			{Role: "b", Status: 403, Peer: "spiffe://cluster.local/ns/default/sa/intruder", Reason: "forbidden"},
		}, []verdict{refuse, idle, caution, caution, refuse, idle}, "✗ intruder not allowed"},
		{"B is down: C's 502 is where it stops", false, &callResult{Kind: callWithToken, Status: 502}, []HopDecision{
			{Role: "a", Status: 502, Token: "ok", Reason: "upstream_bad_gateway"},
			{Role: "c", Status: 502, Token: "ok", Peer: sa, Reason: "bad_gateway"},
		}, []verdict{refuse, idle, caution, refuse, idle, idle}, "the next hop failed"},
		{"workload identity off", true, &callResult{Kind: callWithToken, Status: 200}, ok,
			[]verdict{pass, idle, pass, caution, caution, pass}, ""},
		{"A refuses a replayed DPoP proof", false, &callResult{Kind: callWithToken, Status: 401, DPoP: true},
			[]HopDecision{{Role: "a", Status: 401, Proof: "dpop_replay", Reason: "dpop_replay"}},
			[]verdict{refuse, idle, refuse, idle, idle, idle}, "✗ dpop replay"},
		{"A refuses a bound token without its proof", false, &callResult{Kind: callReplay, Status: 401},
			[]HopDecision{{Role: "a", Status: 401, Token: "bound_as_bearer", Reason: "bound_as_bearer"}},
			[]verdict{refuse, idle, refuse, idle, idle, idle}, "✗ bound to a key, sent without a proof"},
		{"B refuses the page in the handshake", false, &callResult{Kind: callDirectB, Refused: "remote error: tls: certificate required"}, nil,
			[]verdict{refuse, idle, idle, idle, refuse, idle}, "B accepts only " + sc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Page{cfg: Config{PeerAuthOff: tt.off, BCaller: sc}}
			boxes := p.picture(tt.res, tt.hops)
			if len(boxes) != len(tt.want) {
				t.Fatalf("%d boxes, want %d", len(boxes), len(tt.want))
			}
			for i, b := range boxes {
				if b.Verdict != tt.want[i] {
					t.Errorf("box %s is %s, want %s", b.ID, b.Verdict, tt.want[i])
				}
				text := boxText(b)
				if b.Verdict == refuse && i > 0 && !strings.Contains(text, tt.wantBox) {
					t.Errorf("box %s shows %q, want %q in it", b.ID, text, tt.wantBox)
				}
				if b.Reason != "" && strings.Contains(strings.Join(lineValues(b), " "), b.Reason) {
					t.Errorf("box %s says %q twice", b.ID, b.Reason)
				}
			}
		})
	}
}

func lineValues(b box) []string {
	var out []string
	for _, l := range b.Lines {
		out = append(out, l.Value)
	}
	return out
}

func boxText(b box) string {
	return strings.Join(append(lineValues(b), b.Reason), " ")
}

// A's box names its proof check first, when the call had a proof.
func TestPictureShowsTheProofCheck(t *testing.T) {
	p := &Page{}
	res := &callResult{Kind: callWithToken, Status: 200, DPoP: true}
	boxes := p.picture(res, []HopDecision{{Role: "a", Status: 200, Token: "ok", Proof: "ok"}})
	if got := boxText(boxes[2]); !strings.HasPrefix(got, "✓ valid, by the token's key") {
		t.Errorf("A's box shows %q, want the proof check first", got)
	}
	if got := boxText(boxes[0]); !strings.Contains(got, "a DPoP proof") {
		t.Errorf("the user's box shows %q, want what was sent: the token with a proof", got)
	}
}
