// Command promrules writes the chain's Prometheus rules in two forms:
//
//   - -budgets FILE renders the per-role alerts from the chain's table
//     (domain.Chain) into the PrometheusRule FILE, which is checked in
//     (go generate ./deploy runs it);
//   - -out DIR renders one deploy overlay and writes what promtool checks:
//     its alerting rules, taken from the PrometheusRules' spec, and its
//     Grafana dashboards' queries as recording rules
//     (deploy/observability/check.sh runs promtool on them).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/trustchain/trustchain/deploy"
	"github.com/trustchain/trustchain/domain"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "promrules:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("promrules", flag.ContinueOnError)
	budgets := fs.String("budgets", "", "file to write the per-role alerts rendered from the chain's table into")
	overlay := fs.String("overlay", "deploy/overlays/dev", "the overlay to render for -out")
	out := fs.String("out", "", "folder to write "+deploy.AlertRulesFile+" and "+deploy.DashboardRulesFile+" into")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *budgets == "" && *out == "" {
		return fmt.Errorf("-budgets or -out is required")
	}
	if *budgets != "" {
		data, err := deploy.BudgetAlerts(domain.Chain())
		if err != nil {
			return err
		}
		if err := os.WriteFile(*budgets, data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", *budgets, err)
		}
		fmt.Println(*budgets)
	}
	if *out == "" {
		return nil
	}
	files, err := deploy.WritePromtoolFiles(*overlay, *out)
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Println(f)
	}
	return nil
}
