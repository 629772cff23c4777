package deploy_test

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// A PromQL reader just good enough to hold the dashboard's and the alerts'
// queries against metricsContract: it finds the selectors of contract
// metrics (trustchain_*, go_sql_*), their label matchers and the labels the
// query groups or joins by. promtool checks the syntax (check.sh); this
// checks the names.

type matcher struct{ label, op, value string }

type selector struct {
	metric   string // as written: a family, or a histogram's _bucket, _sum or _count
	matchers []matcher
}

var (
	contractMetricName = regexp.MustCompile(`\b(?:trustchain|go_sql)_[a-zA-Z0-9_]*`)
	labelMatcher       = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	groupingClause     = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	// A regex matcher's value made only of literal alternatives, a|b|c.
	literalAlternatives = regexp.MustCompile(`^[\w/{}.-]+(\|[\w/{}.-]+)*$`)
)

// selectors lists the contract metrics a query selects, in order.
func selectors(query string) ([]selector, error) {
	var out []selector
	for _, loc := range contractMetricName.FindAllStringIndex(query, -1) {
		s := selector{metric: query[loc[0]:loc[1]]}
		rest := strings.TrimLeft(query[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "{") {
			body, err := braced(rest)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.metric, err)
			}
			for _, m := range labelMatcher.FindAllStringSubmatch(body, -1) {
				s.matchers = append(s.matchers, matcher{label: m[1], op: m[2], value: m[3]})
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// braced returns what is between s's opening brace and the brace that
// closes it, skipping braces inside quoted label values.
func braced(s string) (string, error) {
	inQuote, escaped := false, false
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case c == '}' && !inQuote:
			return s[1:i], nil
		}
	}
	return "", fmt.Errorf("unclosed {")
}

// family resolves a metric name as written to its contract family; bucket
// tells whether it is a histogram's _bucket series (which adds le).
func family(contract map[string]metricSpec, name string) (fam string, bucket bool, err error) {
	if spec, ok := contract[name]; ok {
		if spec.Type == "histogram" {
			return "", false, fmt.Errorf("%s is a histogram: select its _bucket, _sum or _count", name)
		}
		return name, false, nil
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if spec, found := contract[base]; ok && found && spec.Type == "histogram" {
			return base, suffix == "_bucket", nil
		}
	}
	return "", false, fmt.Errorf("%s is not in the metrics contract", name)
}

// placeholder reports a matcher value filled in later: a Grafana variable
// or a printf verb in an alert's template.
func placeholder(v string) bool { return strings.ContainsAny(v, "$%") }

// checkQuery returns every way query strays from the contract: a metric,
// label or label value the binary does not export, or a grouping label no
// metric in the query has.
func checkQuery(contract map[string]metricSpec, query string) []string {
	sels, err := selectors(query)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	known := map[string]bool{}
	for _, l := range targetLabels {
		known[l] = true
	}
	for _, s := range sels {
		fam, bucket, err := family(contract, s.metric)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		labels := contract[fam].Labels
		for l := range labels {
			known[l] = true
		}
		if bucket {
			known["le"] = true
		}
		for _, m := range s.matchers {
			values, isLabel := labels[m.label]
			switch {
			case slices.Contains(targetLabels, m.label) || (bucket && m.label == "le"):
				continue
			case !isLabel:
				problems = append(problems, fmt.Sprintf("%s has no label %q", s.metric, m.label))
				continue
			case values == nil || placeholder(m.value):
				continue
			}
			wants := []string{m.value}
			if m.op == "=~" || m.op == "!~" {
				if !literalAlternatives.MatchString(m.value) {
					continue
				}
				wants = strings.Split(m.value, "|")
			}
			for _, w := range wants {
				if !slices.Contains(values, w) {
					problems = append(problems, fmt.Sprintf("%s{%s}: %q is not one of %v", s.metric, m.label, w, values))
				}
			}
		}
	}
	for _, g := range groupingClause.FindAllStringSubmatch(query, -1) {
		for _, l := range strings.Split(g[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !known[l] {
				problems = append(problems, fmt.Sprintf("groups by %q, which no metric in the query has", l))
			}
		}
	}
	return problems
}

// metricFamilies lists the contract families query selects.
func metricFamilies(contract map[string]metricSpec, query string) []string {
	sels, _ := selectors(query)
	var out []string
	for _, s := range sels {
		if fam, _, err := family(contract, s.metric); err == nil {
			out = append(out, fam)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}
