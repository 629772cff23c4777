package deploy_test

import (
	"sort"

	"github.com/trustchain/trustchain/adapters/httpapi/server"
	"github.com/trustchain/trustchain/domain"
)

// metricSpec is one metric family of the contract.
type metricSpec struct {
	Type string // counter, gauge or histogram
	// Labels maps each label the binary sets to the values it may take;
	// nil allows any value.
	Labels map[string][]string
	// Buckets are a histogram's upper bounds, +Inf left out.
	Buckets []float64
}

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"namespace", "pod", "job"}

// metricsContract is the metrics contract between the binary and
// what reads its metrics: every trustchain_* and go_sql_* family, its type,
// its labels and their values. The dashboard and the alerts may use nothing
// else (TestDashboardAndAlertsUseOnlyTheContract); a live scrape of each
// role can be held against the same list. Go runtime and process metrics
// (go_*, process_*) are not listed.
func metricsContract() map[string]metricSpec {
	var roles []string
	for _, h := range domain.Chain() {
		roles = append(roles, string(h.Role))
	}
	sort.Strings(roles)
	with := func(labels map[string][]string) map[string][]string {
		out := map[string][]string{"role": roles}
		for k, v := range labels {
			out[k] = v
		}
		return out
	}
	buckets := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 6, 8, 10}
	codeClasses := []string{"1xx", "2xx", "3xx", "4xx", "5xx"}
	routes := server.Routes()
	upstream := map[string][]string{
		"upstream":   {"service-c", "service-b"},
		"code_class": append(append([]string(nil), codeClasses...), "none"),
		"error":      {"none", "timeout", "connection", "bad_response", "rejected", "canceled", "unavailable"},
	}
	db := map[string][]string{"db_name": nil}

	return map[string]metricSpec{
		"trustchain_http_requests_total": {Type: "counter",
			Labels: with(map[string][]string{"route": routes, "code_class": codeClasses})},
		"trustchain_http_request_duration_seconds": {Type: "histogram", Buckets: buckets,
			Labels: with(map[string][]string{"route": routes, "code_class": codeClasses})},
		"trustchain_upstream_requests_total":           {Type: "counter", Labels: with(upstream)},
		"trustchain_upstream_request_duration_seconds": {Type: "histogram", Buckets: buckets, Labels: with(upstream)},
		"trustchain_token_checks_total": {Type: "counter", Labels: with(map[string][]string{
			"result": {"ok", "rejected"},
			"reason": {"ok", "missing", "insufficient_scope", "not_ready", "malformed", "bad_algorithm",
				"unknown_kid", "bad_signature", "wrong_issuer", "wrong_audience", "expired", "missing_exp",
				"not_yet_valid", "keys_unavailable", "other"},
		})},
		"trustchain_token_cache_requests_total": {Type: "counter",
			Labels: with(map[string][]string{"result": {"hit", "miss"}})},
		"trustchain_token_cache_evictions_total":     {Type: "counter", Labels: with(nil)},
		"trustchain_token_cache_entries":             {Type: "gauge", Labels: with(nil)},
		"trustchain_http_connections_accepted_total": {Type: "counter", Labels: with(nil)},
		"trustchain_http_connections_open":           {Type: "gauge", Labels: with(nil)},
		"trustchain_requests_shed_total": {Type: "counter",
			Labels: with(map[string][]string{"reason": server.ShedReasons()})},
		"trustchain_inflight_requests":        {Type: "gauge", Labels: with(nil)},
		"trustchain_admission_inflight_bytes": {Type: "gauge", Labels: with(nil)},
		"trustchain_admission_bound_bytes":    {Type: "gauge", Labels: with(nil)},
		"trustchain_admission_bound_requests": {Type: "gauge", Labels: with(nil)},
		"trustchain_silent_connections_closed_total": {Type: "counter",
			Labels: with(map[string][]string{"port": {"api", "admin"}})},
		"trustchain_jwks_refreshes_total": {Type: "counter",
			Labels: with(map[string][]string{"result": {"ok", "error", "rate_limited"}})},
		"trustchain_peer_refusals_total": {Type: "counter",
			Labels: with(map[string][]string{"mode": {"mtls", "xfcc"}})},
		"trustchain_db_query_duration_seconds": {Type: "histogram", Buckets: buckets,
			Labels: with(map[string][]string{"operation": nil})},
		"trustchain_dependency_up": {Type: "gauge",
			Labels: with(map[string][]string{"dependency": {"oidc", "mysql", "svid"}})},
		// On roles with --peer-auth=mtls only.
		"trustchain_svid_expiry_timestamp_seconds":              {Type: "gauge", Labels: with(map[string][]string{"spiffe_id": nil})},
		"trustchain_svid_not_before_timestamp_seconds":          {Type: "gauge", Labels: with(map[string][]string{"spiffe_id": nil})},
		"trustchain_svid_rotations_total":                       {Type: "counter", Labels: with(nil)},
		"trustchain_svid_rotation_errors_total":                 {Type: "counter", Labels: with(nil)},
		"trustchain_svid_last_rotation_error_timestamp_seconds": {Type: "gauge", Labels: with(nil)},
		"trustchain_trace_export_errors_total":                  {Type: "counter", Labels: with(nil)},
		"trustchain_build_info": {Type: "gauge",
			Labels: with(map[string][]string{"version": nil, "commit": nil, "goversion": nil})},

		// Prometheus' DBStatsCollector, on role b.
		"go_sql_max_open_connections":        {Type: "gauge", Labels: with(db)},
		"go_sql_open_connections":            {Type: "gauge", Labels: with(db)},
		"go_sql_in_use_connections":          {Type: "gauge", Labels: with(db)},
		"go_sql_idle_connections":            {Type: "gauge", Labels: with(db)},
		"go_sql_wait_count_total":            {Type: "counter", Labels: with(db)},
		"go_sql_wait_duration_seconds_total": {Type: "counter", Labels: with(db)},
		"go_sql_max_idle_closed_total":       {Type: "counter", Labels: with(db)},
		"go_sql_max_idle_time_closed_total":  {Type: "counter", Labels: with(db)},
		"go_sql_max_lifetime_closed_total":   {Type: "counter", Labels: with(db)},
	}
}
