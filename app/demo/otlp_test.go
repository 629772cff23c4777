package demo_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/trustchain/trustchain/app/demo"
)

// otlpCollector is an OTLP/HTTP traces receiver: it decodes every export
// and remembers each span's service.name and name.
type otlpCollector struct {
	mu    sync.Mutex
	spans map[string][]string // service.name → span names
}

func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want a POST of protobuf to /v1/traces", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans[service] = append(c.spans[service], s.GetName())
			}
		}
	}
	c.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// TestDemoExportsTracesOverOTLP: `trustchain demo --otlp-endpoint` sends
// every role's spans to the collector; they are all there once the demo
// has stopped (stopping flushes what is batched).
func TestDemoExportsTracesOverOTLP(t *testing.T) {
	collector := &otlpCollector{spans: map[string][]string{}}
	srv := httptest.NewServer(collector)
	defer srv.Close()
	d, _, stop := runDemo(t, func(dc *demo.Config) { dc.OTLPEndpoint = srv.URL })
	if status, body := get(t, "http://"+d.APIAddr(roleA)+"/products", demoToken(t, d)); status != http.StatusOK {
		t.Fatalf("A answered %d: %s", status, body)
	}
	stop()

	collector.mu.Lock()
	defer collector.mu.Unlock()
	for service, span := range map[string]string{
		"service-a": "GET /products",
		"service-c": "GET /products",
		"service-b": "GET /products",
	} {
		if !slices.Contains(collector.spans[service], span) {
			t.Errorf("the collector has no %q span from %s; it has %v", span, service, collector.spans)
		}
	}
}
