// Command promrules renders one deploy overlay and writes what promtool
// checks: its alerting rules, taken from the PrometheusRule's spec, and its
// Grafana dashboards' queries as recording rules (deploy/observability/check.sh
// runs promtool on them).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/trustchain/trustchain/deploy"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "promrules:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("promrules", flag.ContinueOnError)
	overlay := fs.String("overlay", "deploy/overlays/dev", "the overlay to render")
	out := fs.String("out", "", "folder to write "+deploy.AlertRulesFile+" and "+deploy.DashboardRulesFile+" into (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("-out is required")
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
