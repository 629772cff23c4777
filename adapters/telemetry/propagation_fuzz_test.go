package telemetry_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"

	"github.com/trustchain/trustchain/adapters/telemetry"
)

var (
	// Flags: sampled (01) and, since W3C Trace Context Level 2, random
	// (02); every other bit is reserved and must not be passed on.
	traceparentRE = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]$`)
	b3HexRE       = regexp.MustCompile(`^[0-9a-f]{16}([0-9a-f]{16})?$`)
)

// FuzzTraceHeaders: whatever trace headers a caller sends, what the hop
// passes on is either nothing or a well-formed context: a W3C traceparent,
// B3 ids in hex, a bounded tracestate, never B3's debug flag. Garbage never
// travels down the chain.
func FuzzTraceHeaders(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=x", "", "", "")
	f.Add("", "", "80f198ee56343ba864fe8b2a57d3eff7", "e457b5a2e4d86bd1", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1")
	f.Add("00-not-a-trace-01", "a=\x00", "zzzz", "e457b5a2e4d86bd1", "garbage")
	f.Add("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "", "", "", "")
	f.Add("01-00000000000000000000000000000001-0000000000000001-02", "", "", "", "")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff-extra", "", "", "", "")
	f.Add("", "", "", "", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d")
	f.Add("", "", "", "", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d-e457b5a2e4d86bd1")
	p := telemetry.NewPropagator()
	f.Fuzz(func(t *testing.T, traceparent, tracestate, b3trace, b3span, b3single string) {
		in := http.Header{}
		for k, v := range map[string]string{"Traceparent": traceparent, "Tracestate": tracestate, "X-B3-Traceid": b3trace, "X-B3-Spanid": b3span, "B3": b3single} {
			if v != "" {
				in.Set(k, v)
			}
		}
		out := http.Header{}
		p.Inject(p.Extract(context.Background(), propagation.HeaderCarrier(in)), propagation.HeaderCarrier(out))
		if v := out.Get("Traceparent"); v != "" && !traceparentRE.MatchString(v) {
			t.Fatalf("traceparent %q passed on", v)
		}
		if v := out.Get("Tracestate"); len(v) > 512 {
			t.Fatalf("a tracestate of %d bytes passed on", len(v))
		}
		for _, h := range []string{"X-B3-Traceid", "X-B3-Spanid"} {
			if v := out.Get(h); v != "" && !b3HexRE.MatchString(v) {
				t.Fatalf("%s %q passed on", h, v)
			}
		}
		if v := out.Get("B3"); v == "d" || strings.HasSuffix(v, "-d") {
			t.Fatalf("b3 %q passes the debug flag on", v)
		}
		for k := range out {
			switch k {
			case "Traceparent", "Tracestate", "X-B3-Traceid", "X-B3-Spanid", "X-B3-Sampled", "B3":
			default:
				t.Fatalf("the propagator wrote %s", k)
			}
		}
	})
}
