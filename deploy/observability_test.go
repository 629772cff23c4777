package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"

	"github.com/trustchain/trustchain/deploy"
	"github.com/trustchain/trustchain/domain"
)

const (
	// The overlay that carries the observability component.
	observedOverlay = "dev"
	// The hand-written PrometheusRule and the one rendered from the table.
	ruleName       = "trustchain"
	budgetRuleName = "trustchain-budgets"
	dashboardMap   = "trustchain-dashboard"
	dashboardKey   = "trustchain.json"
	dashboardFile  = "components/observability/dashboards/" + dashboardKey
	// Each alert's runbook is the README heading of its name.
	runbookBase = "https://github.com/trustchain/trustchain/blob/main/README.md#"
	// The promtool unit tests and the script that runs them.
	alertTestsFile = "observability/alerts_test.yaml"
	checkScript    = "observability/check.sh"
	// kubectl apply keeps the whole object in an annotation that may not
	// exceed 256 KiB.
	maxAppliedObject = 256 * 1024
)

// ruleGroups returns the rule groups of both PrometheusRules, the
// hand-written one's first.
func ruleGroups(tb testing.TB, b *bundle) []monitoringv1.RuleGroup {
	tb.Helper()
	var groups []monitoringv1.RuleGroup
	for _, name := range []string{ruleName, budgetRuleName} {
		pr, ok := b.prometheusRules[name]
		if !ok {
			tb.Fatalf("overlay %s renders no PrometheusRule %q", b.overlay, name)
		}
		groups = append(groups, pr.Spec.Groups...)
	}
	if len(b.prometheusRules) != 2 {
		tb.Fatalf("overlay %s renders %d PrometheusRules, want %s and %s", b.overlay, len(b.prometheusRules), ruleName, budgetRuleName)
	}
	return groups
}

// alertRules returns every alerting rule of the rendered PrometheusRules.
func alertRules(tb testing.TB, b *bundle) []monitoringv1.Rule {
	tb.Helper()
	var rules []monitoringv1.Rule
	for _, g := range ruleGroups(tb, b) {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		tb.Fatal("the PrometheusRules have no rules")
	}
	return rules
}

// The per-role alerts are rendered from the chain's table, and the
// checked-in file is that rendering: run go generate ./deploy after
// changing the table.
func TestBudgetAlertsAreRenderedFromTheTable(t *testing.T) {
	want, err := deploy.BudgetAlerts(domain.Chain())
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(deploy.BudgetAlertsFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s is not what the chain's table renders; run go generate ./deploy", deploy.BudgetAlertsFile)
	}
	if pr, ok := renderOverlay(t, ".", observedOverlay).prometheusRules[budgetRuleName]; !ok || len(pr.Spec.Groups) == 0 {
		t.Errorf("the %s overlay does not ship %s", observedOverlay, deploy.BudgetAlertsFile)
	}
}

// A fourth role gets its own alerts from its row alone.
func TestBudgetAlertsFollowTheRows(t *testing.T) {
	hops := append(domain.Chain(), domain.Hop{Role: "d", ServiceAccount: "service-d", Budget: 1500 * time.Millisecond})
	data, err := deploy.BudgetAlerts(hops)
	if err != nil {
		t.Fatal(err)
	}
	var pr monitoringv1.PrometheusRule
	if err := yaml.UnmarshalStrict(data, &pr); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	var hop, db []string
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			role := roleMatcher.FindStringSubmatch(r.Expr.String())
			if role == nil {
				t.Fatalf("%s has no role: %s", r.Alert, r.Expr.String())
			}
			switch r.Alert {
			case "TrustchainHopOverBudget":
				hop = append(hop, role[1]+" "+r.Labels["budget"])
			case "TrustchainDBQueryOverBudget":
				db = append(db, role[1]+" "+r.Labels["budget"])
			}
		}
	}
	// Rows appended by hand are not linked: b and d both read the store.
	if want := []string{"a 8s", "c 6s", "b 3s", "d 1.5s"}; !slices.Equal(hop, want) {
		t.Errorf("hop alerts %v, want %v", hop, want)
	}
	if want := []string{"b 3s", "d 1.5s"}; !slices.Equal(db, want) {
		t.Errorf("query alerts %v, want %v", db, want)
	}
	if _, err := deploy.BudgetAlerts([]domain.Hop{{Role: "x"}}); err == nil {
		t.Error("a row without a budget rendered")
	}
}

func TestEveryAlertIsActionable(t *testing.T) {
	for _, r := range alertRules(t, renderOverlay(t, ".", observedOverlay)) {
		t.Run(r.Alert, func(t *testing.T) {
			if r.Alert == "" {
				t.Fatalf("rule %q is not an alert: the component ships alerts only", r.Record)
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("severity %q, want warning or critical", s)
			}
			for _, a := range []string{"summary", "description"} {
				if !strings.Contains(r.Annotations[a], "{{ $labels.role }}") {
					t.Errorf("%s %q does not name the role", a, r.Annotations[a])
				}
			}
			if want := runbookBase + strings.ToLower(r.Alert); r.Annotations["runbook_url"] != want {
				t.Errorf("runbook_url %q, want %q", r.Annotations["runbook_url"], want)
			}
			if !strings.Contains(r.Expr.String(), "namespace") {
				t.Errorf("expr does not keep the namespace: one alert per hop and namespace")
			}
		})
	}
}

var (
	roleMatcher = regexp.MustCompile(`role="(\w+)"`)
	threshold   = regexp.MustCompile(`>\s*([0-9.]+)\s*$`)
)

// Each hop's latency alert fires past the budget the chain's table gives
// it, and the budget is a bucket bound, so "over" is exact.
func TestLatencyBudgetsAreTheChains(t *testing.T) {
	rules := alertRules(t, renderOverlay(t, ".", observedOverlay))
	contract := metricsContract()
	type budgeted struct{ alert, metric string }
	for _, hop := range domain.Chain() {
		cases := []budgeted{{"TrustchainHopOverBudget", "trustchain_http_request_duration_seconds"}}
		if hop.ReadsStore() {
			cases = append(cases, budgeted{"TrustchainDBQueryOverBudget", "trustchain_db_query_duration_seconds"})
		}
		for _, c := range cases {
			name, metric := c.alert, c.metric
			t.Run(name+" "+string(hop.Role), func(t *testing.T) {
				var found []monitoringv1.Rule
				for _, r := range rules {
					m := roleMatcher.FindStringSubmatch(r.Expr.String())
					if r.Alert == name && m != nil && m[1] == string(hop.Role) {
						found = append(found, r)
					}
				}
				if len(found) != 1 {
					t.Fatalf("%d rules for role %s, want 1", len(found), hop.Role)
				}
				r := found[0]
				want := hop.Budget.Seconds()
				m := threshold.FindStringSubmatch(strings.TrimSpace(r.Expr.String()))
				if m == nil {
					t.Fatalf("expr %q does not end in > <seconds>", r.Expr.String())
				}
				if got, _ := strconv.ParseFloat(m[1], 64); got != want {
					t.Errorf("threshold %vs, the chain's budget is %vs", got, want)
				}
				if !strings.Contains(r.Expr.String(), metric+"_bucket") {
					t.Errorf("expr does not read %s", metric)
				}
				budget := strconv.FormatFloat(want, 'f', -1, 64) + "s"
				if r.Labels["budget"] != budget {
					t.Errorf("budget label %q, want %q", r.Labels["budget"], budget)
				}
				if !strings.Contains(r.Annotations["summary"], budget) || !strings.Contains(r.Annotations["description"], budget) {
					t.Errorf("annotations do not name the %s budget: %v", budget, r.Annotations)
				}
				if !slices.Contains(contract[metric].Buckets, want) {
					t.Errorf("budget %vs is not a bucket bound of %s %v", want, metric, contract[metric].Buckets)
				}
			})
		}
	}
}

// promtoolTests is the part of promtool's unit test file these tests read;
// unknown fields fail, as they do for promtool.
type promtoolTests struct {
	RuleFiles          []string `json:"rule_files"`
	EvaluationInterval string   `json:"evaluation_interval"`
	Tests              []struct {
		Name        string `json:"name"`
		Interval    string `json:"interval"`
		InputSeries []struct {
			Series string `json:"series"`
			Values string `json:"values"`
		} `json:"input_series"`
		AlertRuleTest []struct {
			EvalTime  string `json:"eval_time"`
			Alertname string `json:"alertname"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `json:"exp_labels"`
				ExpAnnotations map[string]string `json:"exp_annotations"`
			} `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

// Every alert has a promtool case where it fires and one where it stays
// quiet, a rule written for one role fires for that role, and check.sh
// deliberately breaks every alert at least once.
func TestEveryAlertHasUnitTests(t *testing.T) {
	data, err := os.ReadFile(alertTestsFile)
	if err != nil {
		t.Fatal(err)
	}
	var pt promtoolTests
	if err := yaml.UnmarshalStrict(data, &pt); err != nil {
		t.Fatalf("%s: %v", alertTestsFile, err)
	}
	if !slices.Equal(pt.RuleFiles, []string{deploy.AlertRulesFile}) {
		t.Errorf("rule_files %v, want [%s], the file check.sh extracts", pt.RuleFiles, deploy.AlertRulesFile)
	}
	firing := map[string][]map[string]string{} // alert -> labels of each expected alert
	quiet := map[string]bool{}
	for _, tc := range pt.Tests {
		for _, at := range tc.AlertRuleTest {
			if len(at.ExpAlerts) == 0 {
				quiet[at.Alertname] = true
			}
			for _, e := range at.ExpAlerts {
				firing[at.Alertname] = append(firing[at.Alertname], e.ExpLabels)
			}
		}
	}
	script, err := os.ReadFile(checkScript)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range alertRules(t, renderOverlay(t, ".", observedOverlay)) {
		t.Run(r.Alert, func(t *testing.T) {
			if !quiet[r.Alert] {
				t.Error("no case where it stays quiet")
			}
			role := roleMatcher.FindStringSubmatch(r.Expr.String())
			fires := slices.ContainsFunc(firing[r.Alert], func(l map[string]string) bool {
				return role == nil || l["role"] == role[1]
			})
			if !fires && role != nil {
				t.Errorf("no case where it fires for role %s", role[1])
			} else if !fires {
				t.Error("no case where it fires")
			}
			if !strings.Contains(string(script), `"`+r.Alert+`: `) {
				t.Errorf("%s never breaks it on purpose", checkScript)
			}
		})
	}
}

// What promtool checks is exactly the rendered PrometheusRule's spec.
func TestRuleFileIsThePrometheusRule(t *testing.T) {
	b := renderOverlay(t, ".", observedOverlay)
	m, err := deploy.Render(filepath.Join("overlays", observedOverlay))
	if err != nil {
		t.Fatal(err)
	}
	data, err := deploy.RuleFile(m)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []monitoringv1.RuleGroup `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(data, &file); err != nil {
		t.Fatalf("rule file: %v\n%s", err, data)
	}
	if want := ruleGroups(t, b); !reflect.DeepEqual(file.Groups, want) {
		t.Errorf("rule file groups differ from the PrometheusRule's:\n%s", data)
	}
}

func TestPrometheusRuleIsRequired(t *testing.T) {
	m, err := deploy.Render(filepath.Join("overlays", "service-a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := deploy.RuleFile(m); err == nil {
		t.Error("RuleFile of an overlay without a PrometheusRule: want an error, not an empty file")
	}
}

// dashboardJSON returns the dashboard as the overlay ships it, and checks
// the ConfigMap is one Grafana's sidecar loads and kubectl can apply.
func dashboardJSON(tb testing.TB) []byte {
	tb.Helper()
	b := renderOverlay(tb, ".", observedOverlay)
	cm, ok := b.configMaps[dashboardMap]
	if !ok {
		tb.Fatalf("no ConfigMap %s (a name suffix would make the sidecar keep every old copy)", dashboardMap)
	}
	if cm.Labels[deploy.DashboardLabel] != "1" {
		tb.Errorf("labels %v, want %s: \"1\" for Grafana's sidecar", cm.Labels, deploy.DashboardLabel)
	}
	raw, err := json.Marshal(cm)
	if err != nil {
		tb.Fatal(err)
	}
	if len(raw) >= maxAppliedObject {
		tb.Errorf("ConfigMap is %d bytes; kubectl apply refuses %d and more", len(raw), maxAppliedObject)
	}
	data, ok := cm.Data[dashboardKey]
	if !ok {
		tb.Fatalf("ConfigMap %s has no %s", dashboardMap, dashboardKey)
	}
	onDisk, err := os.ReadFile(dashboardFile)
	if err != nil {
		tb.Fatal(err)
	}
	if data != string(onDisk) {
		tb.Errorf("the ConfigMap's %s is not %s", dashboardKey, dashboardFile)
	}
	return []byte(data)
}

// datasourceRefs finds every "datasource" in a dashboard's JSON, wherever
// it is, by its path.
func datasourceRefs(v any, path string, out map[string]any) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if k == "datasource" {
				out[path+"."+k] = child
			}
			datasourceRefs(child, path+"."+k, out)
		}
	case []any:
		for i, child := range v {
			datasourceRefs(child, fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

func TestDashboardHasAQueryInEveryPanel(t *testing.T) {
	data := dashboardJSON(t)
	d, err := deploy.ParseDashboard(data)
	if err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: want both", d.UID, d.Title)
	}
	ids := map[int]string{}
	panels := 0
	for _, p := range d.AllPanels() {
		if other, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		panels++
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q query %s is empty", p.Title, tg.RefID)
			}
			if refs[tg.RefID] {
				t.Errorf("panel %q has two queries %s", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
		}
	}
	if panels == 0 {
		t.Fatal("the dashboard has no panels")
	}
}

func TestDashboardPicksDatasourceAndNamespace(t *testing.T) {
	data := dashboardJSON(t)
	d, err := deploy.ParseDashboard(data)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]deploy.Variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if ds := vars["datasource"]; ds.Type != "datasource" || ds.QueryText() != "prometheus" {
		t.Errorf("variable datasource: type %q query %q, want a Prometheus data source variable", ds.Type, ds.QueryText())
	}
	if ns := vars["namespace"]; ns.Type != "query" || !strings.Contains(ns.QueryText(), "namespace)") {
		t.Errorf("variable namespace: type %q query %q, want label_values(…, namespace)", ns.Type, ns.QueryText())
	}

	// No data source is named by its UID: the variable picks it.
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	refs := map[string]any{}
	datasourceRefs(doc, "$", refs)
	if len(refs) == 0 {
		t.Fatal("no datasource references at all")
	}
	for path, ref := range refs {
		if path == "$.templating.list[0].datasource" && ref == nil {
			continue
		}
		m, ok := ref.(map[string]any)
		if !ok || m["type"] != "prometheus" || (m["uid"] != "${datasource}" && m["uid"] != "$datasource") {
			t.Errorf("%s = %v, want {type: prometheus, uid: ${datasource}}", path, ref)
		}
	}

	// Every selector keeps to the chosen namespace.
	for _, p := range d.AllPanels() {
		for _, tg := range p.Targets {
			sels, err := selectors(tg.Expr)
			if err != nil {
				t.Errorf("panel %q: %v", p.Title, err)
			}
			for _, s := range sels {
				if !slices.Contains(s.matchers, matcher{"namespace", "=", "$namespace"}) {
					t.Errorf("panel %q: %s without namespace=\"$namespace\"", p.Title, s.metric)
				}
			}
		}
	}
}

// dashboardQueries lists every query of the dashboard, its variables'
// included, by where it is.
func dashboardQueries(tb testing.TB) map[string]string {
	tb.Helper()
	d, err := deploy.ParseDashboard(dashboardJSON(tb))
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]string{}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			out["variable "+v.Name] = v.QueryText()
		}
	}
	for _, p := range d.AllPanels() {
		for _, tg := range p.Targets {
			out[fmt.Sprintf("panel %q %s", p.Title, tg.RefID)] = tg.Expr
		}
	}
	return out
}

func TestDashboardAndAlertsUseOnlyTheContract(t *testing.T) {
	contract := metricsContract()
	queries := dashboardQueries(t)
	for _, r := range alertRules(t, renderOverlay(t, ".", observedOverlay)) {
		queries[r.Alert+" "+r.Labels["budget"]+" expr"] = r.Expr.String()
		// An annotation may run a query of its own.
		for k, v := range r.Annotations {
			queries[r.Alert+" "+r.Labels["budget"]+" "+k] = v
		}
	}
	for where, q := range queries {
		for _, p := range checkQuery(contract, q) {
			t.Errorf("%s: %s", where, p)
		}
	}
}

// The dashboard shows every metric of the contract somewhere.
func TestDashboardShowsTheWholeContract(t *testing.T) {
	contract := metricsContract()
	shown := map[string]bool{}
	for _, q := range dashboardQueries(t) {
		for _, f := range metricFamilies(contract, q) {
			shown[f] = true
		}
	}
	for _, name := range sortedKeys(contract) {
		if !shown[name] {
			t.Errorf("no panel shows %s", name)
		}
	}
}

// The contract check is what keeps a misspelt metric, label or value out
// of the dashboard and the alerts; prove it catches each.
func TestContractCheckCatchesStrays(t *testing.T) {
	contract := metricsContract()
	good := `sum by (namespace, role, reason) (rate(trustchain_token_checks_total{namespace="$namespace", role=~"a|c", result="rejected", reason!="missing"}[5m]))
		/ on (namespace, role) group_left ()
		histogram_quantile(0.99, sum by (role, le) (rate(trustchain_http_request_duration_seconds_bucket{route="/products/{id}", code_class=~"4xx|5xx"}[5m])))
		+ go_sql_in_use_connections{db_name="trustchain", pod=~".+"}`
	if p := checkQuery(contract, good); len(p) != 0 {
		t.Fatalf("a query within the contract: %v", p)
	}
	tests := []struct{ name, query string }{
		{"unknown metric", `rate(trustchain_http_request_total[5m])`},
		{"unknown label", `trustchain_http_requests_total{status="500"}`},
		{"unknown value", `trustchain_upstream_requests_total{error="timout"}`},
		{"unknown value among alternatives", `trustchain_upstream_requests_total{error!~"none|cancelled"}`},
		{"unknown role", `trustchain_build_info{role="d"}`},
		{"grouping by a label no metric has", `sum by (reason) (rate(trustchain_http_requests_total[5m]))`},
		{"le outside a bucket", `sum by (le) (trustchain_http_requests_total)`},
		{"a histogram without a suffix", `trustchain_db_query_duration_seconds{role="b"}`},
		{"an unclosed selector", `trustchain_http_requests_total{role="a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p := checkQuery(contract, tt.query); len(p) == 0 {
				t.Errorf("%s: no problem found", tt.query)
			}
		})
	}
}

// check.sh hands promtool every dashboard query as a recording rule.
func TestDashboardRuleFileHasEveryQuery(t *testing.T) {
	data := dashboardJSON(t)
	out, err := deploy.DashboardRuleFile(map[string][]byte{dashboardMap + "/" + dashboardKey: data})
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Record string `json:"record"`
				Expr   string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(out, &file); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
			if strings.Contains(r.Expr, "$") {
				t.Errorf("%s: a Grafana variable is left: %s", r.Record, r.Expr)
			}
		}
	}
	d, err := deploy.ParseDashboard(data)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, p := range d.AllPanels() {
		for _, tg := range p.Targets {
			want = append(want, deploy.PromQL(tg.Expr))
		}
	}
	if !slices.Equal(exprs, want) {
		t.Errorf("recording rules %d, dashboard queries %d: want one rule per query, in order", len(exprs), len(want))
	}
}

func TestPromQLReplacesGrafanaVariables(t *testing.T) {
	tests := []struct{ in, want string }{
		{`rate(x{namespace="$namespace"}[$__rate_interval])`, `rate(x{namespace="grafana_namespace"}[5m])`},
		{`x{role=~"${role}"}`, `x{role=~"grafana_role"}`},
		{`x{role=~"${role:regex}"}[$__interval]`, `x{role=~"grafana_role"}[5m]`},
		{`increase(x[$__range])`, `increase(x[5m])`},
		{`sum(x)`, `sum(x)`},
	}
	for _, tt := range tests {
		if got := deploy.PromQL(tt.in); got != tt.want {
			t.Errorf("PromQL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
