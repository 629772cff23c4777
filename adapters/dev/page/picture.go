package page

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/trustchain/trustchain/domain"
)

// verdict colours a box, a line of it, or an arrow of the chain's picture.
type verdict string

const (
	pass    verdict = "ok"   // green: checked and let through
	caution verdict = "warn" // amber: let through unchecked, or passing a refusal on
	refuse  verdict = "bad"  // red: refused here
	idle    verdict = "idle" // grey: not reached, or nothing called yet
)

// box is one part of the chain as the page draws it, with the arrow that
// leads into it (none for the first).
type box struct {
	ID, Name, Role string
	Verdict        verdict
	Lines          []line
	Reason         string // why it refused, when no line says it already
	Arrow          *arrow
}

type line struct {
	Label, Value string
	Verdict      verdict
}

type arrow struct {
	Label   string
	Verdict verdict
}

// picture is the chain as boxes: the user, the ingress, A, C, B and the
// store, each with its verdict on the last call, or with what it checks
// when nothing has been called yet.
func (p *Page) picture(res *callResult, hops []HopDecision) []box {
	byRole := map[string]HopDecision{}
	origin := ""
	for _, h := range hops {
		byRole[h.Role] = h
		if h.Status >= http.StatusBadRequest {
			origin = h.Role // the deepest hop that refused: the others passed it on
		}
	}
	boxes := []box{userBox(res), {
		ID: "ingress", Name: "Ingress", Role: "Istio gateway", Verdict: idle,
		Lines: []line{{Value: "not in the demo: the page calls A directly", Verdict: idle}},
		Arrow: &arrow{Label: "HTTPS + token", Verdict: idle},
	}}
	var last HopDecision
	for _, h := range domain.Chain() {
		d, reached := byRole[string(h.Role)]
		boxes = append(boxes, p.chainBox(h, d, reached, string(h.Role) == origin, res))
		if h.ReadsStore() {
			last = d
		}
	}
	boxes[1].Arrow.Verdict = boxes[2].Arrow.Verdict // the ingress's arrow follows A's
	return append(boxes, p.storeBox(last))
}

// chainBox is a hop's box in the picture of res, with the arrow into it.
func (p *Page) chainBox(h domain.Hop, d HopDecision, reached, origin bool, res *callResult) box {
	b := p.hopBox(h, d, reached, origin, res != nil)
	b.Arrow = &arrow{Label: "mTLS + token", Verdict: idle} // into A: from the ingress, in a cluster
	if p.cfg.PeerAuthOff {
		b.Arrow.Label = "HTTP + token, no identity"
	}
	direct := res != nil && res.Kind == callDirectB
	switch {
	case direct:
		b = p.directBox(h, b, res)
	case h.IsEdge() && res != nil && res.Refused != "":
		b.Verdict, b.Reason = refuse, "no answer: "+res.Refused
	}
	if b.Verdict != idle {
		b.Arrow.Verdict = pass
		if direct || p.cfg.PeerAuthOff && !h.IsEdge() {
			b.Arrow.Verdict = caution
		}
	}
	return b
}

func userBox(res *callResult) box {
	b := box{ID: "user", Name: "You", Role: "the browser and this page", Verdict: idle}
	if res == nil {
		b.Lines = []line{{Label: "sent", Value: "nothing yet", Verdict: idle}}
		return b
	}
	sent := map[string]string{callWithToken: "your token", callNoToken: "no token", callExpired: "an expired token", callDirectB: "your token, to B",
		callReplay: "your token as Bearer, without the key"}[res.Kind]
	if res.DPoP {
		sent = "your token + a DPoP proof by this session's key"
	}
	got := line{Label: "got", Value: "no answer", Verdict: refuse}
	if res.Status != 0 {
		got.Value, got.Verdict = strconv.Itoa(res.Status)+" "+http.StatusText(res.Status), refuse
		if res.Status < http.StatusBadRequest {
			got.Verdict = pass
		}
	}
	b.Lines = []line{{Label: "sent", Value: sent, Verdict: idle}, got}
	b.Verdict = got.Verdict
	if res.Notice != "" {
		b.Lines, b.Verdict = b.Lines[:1], idle
	}
	return b
}

// hopBox is what role decided: its token check, its caller check and its
// status, each once.
func (p *Page) hopBox(h domain.Hop, d HopDecision, reached, origin, called bool) box {
	b := box{ID: "hop-" + string(h.Role), Name: strings.ToUpper(string(h.Role)), Role: h.ServiceAccount}
	tokenLine := line{Label: "token", Value: "checked here", Verdict: idle}
	callerLine := p.callerCheck(h)
	b.Verdict = idle
	switch {
	case !reached && called:
		b.Lines = []line{{Value: "not reached", Verdict: idle}}
		return b
	case !reached:
		b.Lines = []line{tokenLine, callerLine}
		return b
	}
	switch {
	case d.Token == "ok":
		tokenLine.Value, tokenLine.Verdict = "✓ valid", pass
	case d.Token == "":
		tokenLine.Value = "not checked"
	default:
		tokenLine.Value, tokenLine.Verdict = "✗ "+reasonText(d.Token), refuse
	}
	switch {
	case d.Reason == "forbidden":
		callerLine.Value, callerLine.Verdict = "✗ "+orUnknown(workloadName(d.Peer))+" not allowed", refuse
	case d.Peer != "" && !p.cfg.PeerAuthOff:
		callerLine.Value, callerLine.Verdict = "✓ "+workloadName(d.Peer), pass
	}
	checks := []line{tokenLine, callerLine}
	if d.Proof != "" {
		checks = append([]line{proofLine(d.Proof)}, checks...)
	}
	statusLine := line{Label: "answered", Value: strconv.Itoa(d.Status), Verdict: pass}
	b.Verdict = pass
	switch {
	case origin:
		statusLine.Verdict, b.Verdict = refuse, refuse
		if !refusedBy(checks) {
			b.Reason = reasonText(d.Reason)
		}
	case d.Status >= http.StatusBadRequest:
		statusLine.Verdict, b.Verdict = caution, caution
		b.Reason = "passed on the refusal from below"
	case callerLine.Verdict == caution:
		b.Verdict = caution
	}
	b.Lines = append(checks, statusLine)
	return b
}

// refusedBy reports whether one of the checks already says why the hop
// refused.
func refusedBy(checks []line) bool {
	for _, l := range checks {
		if l.Verdict == refuse {
			return true
		}
	}
	return false
}

// proofLine is the hop's DPoP proof check: "ok" or the refusal reason.
func proofLine(verdict string) line {
	if verdict == "ok" {
		return line{Label: "DPoP proof", Value: "✓ valid, by the token's key", Verdict: pass}
	}
	return line{Label: "DPoP proof", Value: "✗ " + reasonText(verdict), Verdict: refuse}
}

// callerCheck is what the hop checks of its caller, before any call.
func (p *Page) callerCheck(h domain.Hop) line {
	switch {
	case h.IsEdge():
		return line{Label: "caller", Value: "none: A is the edge", Verdict: idle}
	case p.cfg.PeerAuthOff:
		return line{Label: "caller", Value: "! not checked: workload identity is off", Verdict: caution}
	}
	return line{Label: "caller", Value: "checked: only " + strings.ToUpper(string(h.CalledBy)) + " may call", Verdict: idle}
}

// directBox redraws a hop's box for the call that goes straight to the
// hop that reads the store, past the others.
func (p *Page) directBox(h domain.Hop, b box, res *callResult) box {
	if !h.ReadsStore() {
		return box{ID: b.ID, Name: b.Name, Role: b.Role, Verdict: idle, Arrow: b.Arrow,
			Lines: []line{{Value: "skipped: the page calls B itself", Verdict: idle}}}
	}
	b.Arrow.Label = "the page, straight to B"
	if res.Refused == "" {
		return b
	}
	b.Verdict = refuse
	b.Lines = []line{
		{Label: "token", Value: "not reached", Verdict: idle},
		{Label: "caller", Value: "✗ " + tlsRefusal(res.Refused), Verdict: refuse},
		{Label: "answered", Value: "no HTTP answer", Verdict: refuse},
	}
	b.Reason = ""
	if p.cfg.BCaller != "" {
		b.Reason = "B accepts only " + p.cfg.BCaller
	}
	return b
}

// tlsRefusal says in words why a TLS handshake failed. The page's client
// for B presents no certificate (Config.BClient), so a refusal alert is B
// refusing a caller without a workload identity.
func tlsRefusal(err string) string {
	if strings.Contains(err, "certificate required") || strings.Contains(err, "bad certificate") {
		return "refused in the TLS handshake: the page has no workload certificate"
	}
	return "no connection: " + err
}

func (p *Page) storeBox(b HopDecision) box {
	name := p.cfg.Store
	if name == "" {
		name = "MySQL"
	}
	out := box{ID: "store", Name: name, Role: "the catalogue", Verdict: idle,
		Lines: []line{{Value: "read by B only", Verdict: idle}}, Arrow: &arrow{Label: "SQL", Verdict: idle}}
	if b.Status == http.StatusOK {
		out.Verdict, out.Arrow.Verdict = pass, pass
		out.Lines = []line{{Value: "✓ read the products", Verdict: pass}}
	}
	return out
}

// reasonTexts are the refusal reasons the hops log, in words.
var reasonTexts = map[string]string{
	"missing":            "no token",
	"expired":            "expired",
	"insufficient_scope": "lacks the permission",
	"forbidden":          "caller not allowed",
	"wrong_audience":     "for another API",
	"wrong_issuer":       "from another issuer",
	"bad_signature":      "bad signature",
	"malformed":          "malformed",
	"unavailable":        "unavailable",
	"timeout":            "timed out",
	"upstream_timeout":   "the next hop timed out",
	"bound_as_bearer":    "bound to a key, sent without a proof",
	"bad_gateway":        "the next hop failed",
}

func reasonText(reason string) string {
	if t, ok := reasonTexts[reason]; ok {
		return t
	}
	return strings.ReplaceAll(reason, "_", " ")
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown caller"
	}
	return s
}

// workloadName shortens spiffe://td/ns/default/sa/service-a to service-a.
func workloadName(spiffeID string) string {
	if i := strings.LastIndex(spiffeID, "/sa/"); i >= 0 {
		return spiffeID[i+len("/sa/"):]
	}
	return spiffeID
}
