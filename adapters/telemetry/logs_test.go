package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/trustchain/trustchain/adapters/telemetry"
)

func newJSONLogger(tb testing.TB) (*slog.Logger, *bytes.Buffer) {
	tb.Helper()
	var buf bytes.Buffer
	log, err := telemetry.NewLogger(&buf, telemetry.LogJSON, slog.LevelInfo, "c")
	if err != nil {
		tb.Fatal(err)
	}
	return log, &buf
}

// records decodes one JSON object per line.
func records(tb testing.TB, buf *bytes.Buffer) []map[string]any {
	tb.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			tb.Fatalf("not JSON: %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

func TestLogHandlerAddsContextFields(t *testing.T) {
	tid, _ := trace.TraceIDFromHex(inTraceID)
	sid, _ := trace.SpanIDFromHex(inSpanID)
	withSpan := trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, Remote: true}))

	tests := []struct {
		name string
		ctx  context.Context
		want map[string]any // nil value: the key must be absent
	}{
		{"no context fields", context.Background(), map[string]any{
			"role": "c", "msg": "hello", "trace_id": nil, "span_id": nil, "request_id": nil,
		}},
		{"span only", withSpan, map[string]any{
			"role": "c", "trace_id": inTraceID, "span_id": inSpanID, "request_id": nil,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			log, buf := newJSONLogger(t)
			log.InfoContext(tc.ctx, "hello", "a", 1, "b", 2, "c", 3, "d", 4, "e", 5, "f", 6)
			rec := records(t, buf)[0]
			for k, want := range tc.want {
				got, ok := rec[k]
				if want == nil {
					if ok {
						t.Errorf("%s = %v, want absent", k, got)
					}
					continue
				}
				if got != want {
					t.Errorf("%s = %v, want %v", k, got, want)
				}
			}
			if rec["f"] != float64(6) {
				t.Errorf("record lost its own attributes: %v", rec)
			}
		})
	}
}

func TestLogsInsideServerMiddlewareCarryTheSpan(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := newTracing(t, exp)
	log, buf := newJSONLogger(t)
	srv := httptest.NewServer(tr.ServerMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.InfoContext(r.Context(), "listing")
	})))
	t.Cleanup(srv.Close)

	get(t, http.DefaultClient, context.Background(), srv.URL+"/products", nil)

	server := spanOfKind(t, exp.GetSpans(), trace.SpanKindServer)
	rec := records(t, buf)[0]
	if rec["trace_id"] != server.SpanContext.TraceID().String() || rec["span_id"] != server.SpanContext.SpanID().String() {
		t.Errorf("log has trace %v span %v, want %s %s", rec["trace_id"], rec["span_id"],
			server.SpanContext.TraceID(), server.SpanContext.SpanID())
	}
}

func TestNewLoggerFormatsAndLevel(t *testing.T) {
	var buf bytes.Buffer
	log, err := telemetry.NewLogger(&buf, telemetry.LogText, slog.LevelWarn, "a")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown")
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, "role=a") || !strings.Contains(got, "msg=shown") {
		t.Errorf("text output %q: want only the warning, with role=a", got)
	}
	if _, err := telemetry.NewLogger(&buf, "xml", slog.LevelInfo, "a"); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"debug", slog.LevelDebug, false},
		{"INFO", slog.LevelInfo, false},
		{" warn ", slog.LevelWarn, false},
		{"error", slog.LevelError, false},
		{"info+2", slog.LevelInfo + 2, false},
		{"loud", 0, true},
		{"", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := telemetry.ParseLevel(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseLevel(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
