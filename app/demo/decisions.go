package demo

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/trustchain/trustchain/adapters/dev/page"
	"github.com/trustchain/trustchain/domain"
)

// hopDecisions remembers what each role of the demo decided about recent
// requests, read from the access-log records as they are written, so the
// demo page can show the chain at work for the request it just sent. It
// keeps the last maxDecisions requests, and one decision per role of each.
type hopDecisions struct {
	mu    sync.Mutex
	byID  map[string][]page.HopDecision
	order []string // request ids, oldest first
}

const maxDecisions = 256

func newHopDecisions() *hopDecisions {
	return &hopDecisions{byID: map[string][]page.HopDecision{}}
}

// Decisions implements page.Decisions: the hops that saw the request, in
// the chain's order.
func (d *hopDecisions) Decisions(_ context.Context, requestID string) []page.HopDecision {
	d.mu.Lock()
	found := slices.Clone(d.byID[requestID])
	d.mu.Unlock()
	var out []page.HopDecision
	for _, h := range domain.Chain() {
		for _, dec := range found {
			if dec.Role == string(h.Role) {
				out = append(out, dec)
			}
		}
	}
	return out
}

func (d *hopDecisions) record(requestID string, dec page.HopDecision) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, seen := d.byID[requestID]; !seen {
		d.order = append(d.order, requestID)
		if len(d.order) > maxDecisions {
			delete(d.byID, d.order[0])
			d.order = d.order[1:]
		}
	}
	// One entry per role: a request id is the caller's to choose, so
	// requests that reuse one must not grow its entry, and the first
	// decision, the one the page's own call caused, stands.
	if slices.ContainsFunc(d.byID[requestID], func(h page.HopDecision) bool { return h.Role == dec.Role }) {
		return
	}
	d.byID[requestID] = append(d.byID[requestID], dec)
}

// handler wraps a role's log handler to record its access-log lines.
func (d *hopDecisions) handler(role domain.Role, next slog.Handler) slog.Handler {
	return decisionHandler{Handler: next, role: string(role), d: d}
}

type decisionHandler struct {
	slog.Handler
	role string
	d    *hopDecisions
}

func (h decisionHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h decisionHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "request" {
		h.note(r)
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

// note reads one access-log record: status, the token's subject, the
// caller's identity and the refusal reason.
func (h decisionHandler) note(r slog.Record) {
	dec := page.HopDecision{Role: h.role}
	var requestID, sub string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "request_id":
			requestID = a.Value.String()
		case "status":
			dec.Status = int(a.Value.Int64())
		case "sub":
			sub = a.Value.String()
		case "peer":
			dec.Peer = a.Value.String()
		case "dpop":
			dec.Proof = a.Value.String()
		case "error":
			for _, e := range a.Value.Group() {
				if e.Key == "reason" {
					dec.Reason = e.Value.String()
				}
			}
		}
		return true
	})
	switch {
	case strings.HasPrefix(dec.Reason, "dpop_") && slices.Contains(domain.ProofReasons(), dec.Reason):
		dec.Proof = dec.Reason // the proof, or its key binding, was refused
	case slices.Contains(domain.TokenReasons(), dec.Reason):
		dec.Token = dec.Reason
	case sub != "":
		dec.Token = "ok"
	}
	if requestID != "" {
		h.d.record(requestID, dec)
	}
}

func (h decisionHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return decisionHandler{Handler: h.Handler.WithAttrs(attrs), role: h.role, d: h.d}
}

func (h decisionHandler) WithGroup(name string) slog.Handler {
	return decisionHandler{Handler: h.Handler.WithGroup(name), role: h.role, d: h.d}
}
