package app

import (
	"testing"

	"github.com/trustchain/trustchain/adapters/telemetry"
)

// TestTracingFlagsAreTheCommandLines: what came from the environment is
// left to the OpenTelemetry SDK, which reads it itself; a group with any
// setting on the command line goes over whole, as the config merged it.
func TestTracingFlagsAreTheCommandLines(t *testing.T) {
	cfg := Defaults()
	cfg.OTLPEndpoint, cfg.OTLPTracesEndpoint = "http://base:4318", "http://traces:4318/t"
	cfg.TracesSampler, cfg.TracesSamplerArg = "traceidratio", "0.5"
	cfg.OTelServiceName, cfg.OTelResourceAttrs = "name", "k=v"
	for _, tt := range []struct {
		given []string
		want  telemetry.TracingFlags
	}{
		{nil, telemetry.TracingFlags{}},
		{[]string{"otlp-traces-endpoint"}, telemetry.TracingFlags{Endpoint: "http://base:4318", TracesEndpoint: "http://traces:4318/t"}},
		{[]string{"traces-sampler-arg"}, telemetry.TracingFlags{Sampler: "traceidratio", SamplerArg: "0.5"}},
		{[]string{"otel-service-name", "otlp-endpoint"}, telemetry.TracingFlags{Endpoint: "http://base:4318", TracesEndpoint: "http://traces:4318/t", ServiceName: "name", ResourceAttributes: "k=v"}},
	} {
		cfg.CommandLine = map[string]bool{}
		for _, name := range tt.given {
			cfg.CommandLine[name] = true
		}
		if got := cfg.tracingFlags(); got != tt.want {
			t.Errorf("given %v: flags %+v, want %+v", tt.given, got, tt.want)
		}
	}
}
