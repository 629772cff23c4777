package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/api/resmap"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// DashboardLabel is the label, set to "1", by which Grafana's sidecar finds
// the ConfigMaps that hold dashboards.
const DashboardLabel = "grafana_dashboard"

// The files WritePromtoolFiles writes.
const (
	AlertRulesFile     = "alerts.rules.yaml"
	DashboardRulesFile = "dashboards.rules.yaml"
)

// WritePromtoolFiles renders the overlay in dir and writes into outDir what
// promtool checks: the overlay's alerting rules (AlertRulesFile) and its
// dashboards' queries as recording rules (DashboardRulesFile). It returns
// the files written.
func WritePromtoolFiles(dir, outDir string) ([]string, error) {
	m, err := Render(dir)
	if err != nil {
		return nil, err
	}
	rules, err := RuleFile(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	dashboards, err := Dashboards(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	queries, err := DashboardRuleFile(dashboards)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	var files []string
	for name, data := range map[string][]byte{AlertRulesFile: rules, DashboardRulesFile: queries} {
		file := filepath.Join(outDir, name)
		if err := os.WriteFile(file, data, 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", file, err)
		}
		files = append(files, file)
	}
	sort.Strings(files)
	return files, nil
}

// RuleFile returns the rule groups of every PrometheusRule in m as one
// Prometheus rule file, the form promtool reads. The PrometheusRule is the
// only source of the rules, so what promtool checks is what the overlay
// ships.
func RuleFile(m resmap.ResMap) ([]byte, error) {
	groups := kyaml.NewListRNode()
	for _, res := range m.Resources() {
		if res.GetKind() != "PrometheusRule" {
			continue
		}
		g, err := res.Pipe(kyaml.Lookup("spec", "groups"))
		if err != nil {
			return nil, fmt.Errorf("PrometheusRule %s: %w", res.GetName(), err)
		}
		if g == nil || len(g.Content()) == 0 {
			return nil, fmt.Errorf("PrometheusRule %s has no spec.groups", res.GetName())
		}
		groups.YNode().Content = append(groups.YNode().Content, g.Content()...)
	}
	if len(groups.Content()) == 0 {
		return nil, fmt.Errorf("rule file: no PrometheusRule rendered")
	}
	file := kyaml.NewMapRNode(nil)
	if err := file.PipeE(kyaml.SetField("groups", groups)); err != nil {
		return nil, fmt.Errorf("rule file: %w", err)
	}
	s, err := file.String()
	if err != nil {
		return nil, fmt.Errorf("rule file: %w", err)
	}
	return []byte(s), nil
}

// Dashboards returns the Grafana dashboards in m: every data key of every
// ConfigMap labelled grafana_dashboard=1, by "<configmap>/<key>".
func Dashboards(m resmap.ResMap) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, res := range m.Resources() {
		if res.GetKind() != "ConfigMap" || res.GetLabels()[DashboardLabel] != "1" {
			continue
		}
		data := res.GetDataMap()
		if len(data) == 0 {
			return nil, fmt.Errorf("dashboard ConfigMap %s has no data", res.GetName())
		}
		for key, v := range data {
			out[res.GetName()+"/"+key] = []byte(v)
		}
	}
	return out, nil
}

// Dashboard is the part of a Grafana dashboard's JSON model that the checks
// read; Grafana's other fields are ignored.
type Dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []Variable `json:"list"`
	} `json:"templating"`
	Panels []Panel `json:"panels"`
}

// Variable is one template variable.
type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *Datasource     `json:"datasource"`
}

// QueryText is the variable's query, which Grafana stores either as a string
// or as an object with a "query" field.
func (v Variable) QueryText() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(v.Query, &o) == nil {
		return o.Query
	}
	return ""
}

// Datasource points a panel, query or variable at a data source.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Panel is one panel; a collapsed row holds its panels in Panels.
type Panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *Datasource `json:"datasource"`
	Targets    []Target    `json:"targets"`
	Panels     []Panel     `json:"panels"`
}

// Target is one query of a panel.
type Target struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Datasource *Datasource `json:"datasource"`
}

// ParseDashboard decodes a dashboard's JSON.
func ParseDashboard(data []byte) (*Dashboard, error) {
	var d Dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("parse dashboard: %w", err)
	}
	return &d, nil
}

// AllPanels lists every panel, rows and the panels inside collapsed rows
// included, in order.
func (d *Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// grafanaVar matches $name, ${name} and ${name:format}.
var grafanaVar = regexp.MustCompile(`\$(\w+)|\$\{(\w+)(?::[^}]*)?\}`)

// PromQL replaces Grafana's variables in a query with stand-ins Prometheus
// accepts: the interval variables become a duration and any other variable
// a plain word, which is valid wherever the dashboard uses variables (in
// label matchers).
func PromQL(grafanaExpr string) string {
	return grafanaVar.ReplaceAllStringFunc(grafanaExpr, func(v string) string {
		name := strings.Trim(v, "${}")
		name, _, _ = strings.Cut(name, ":")
		switch name {
		case "__interval", "__rate_interval", "__range":
			return "5m"
		}
		return "grafana_" + name
	})
}

// DashboardRuleFile turns every query of the dashboards into a recording
// rule, "dashboard:<dashboard uid>_panel_<id>:<refId>", so that promtool
// check rules parses the dashboards' PromQL as it parses the alerts'.
func DashboardRuleFile(dashboards map[string][]byte) ([]byte, error) {
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	type group struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	}
	names := make([]string, 0, len(dashboards))
	for name := range dashboards {
		names = append(names, name)
	}
	sort.Strings(names)
	var groups []group
	for _, name := range names {
		d, err := ParseDashboard(dashboards[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		g := group{Name: "dashboard " + name}
		for _, p := range d.AllPanels() {
			for _, t := range p.Targets {
				g.Rules = append(g.Rules, rule{
					Record: fmt.Sprintf("dashboard:%s_panel_%d:%s", recordSafe(d.UID), p.ID, recordSafe(t.RefID)),
					Expr:   PromQL(t.Expr),
				})
			}
		}
		if len(g.Rules) == 0 {
			return nil, fmt.Errorf("%s: no queries", name)
		}
		groups = append(groups, g)
	}
	if len(groups) == 0 {
		return nil, fmt.Errorf("dashboard rule file: no dashboards rendered")
	}
	out, err := kyaml.Marshal(map[string][]group{"groups": groups})
	if err != nil {
		return nil, fmt.Errorf("dashboard rule file: %w", err)
	}
	return out, nil
}

var notInMetricName = regexp.MustCompile(`[^a-zA-Z0-9_]`)

func recordSafe(s string) string { return notInMetricName.ReplaceAllString(s, "_") }
