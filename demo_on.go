//go:build !nodemo

package main

import (
	"github.com/urfave/cli/v2"

	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/app/demo"
)

// devCommands are `demo` and `certs`, with their flags. Only this file
// links package demo and through it the adapters/dev packages; the
// production build (-tags nodemo) takes demo_off.go instead.
func devCommands(deps app.Deps, args []string) ([]*cli.Command, []flagSet) {
	dc, cc := demo.Defaults(), demo.CertsDefaults()
	demoFlags, certsFlags := flagsOf(&dc, nil), flagsOf(&cc, nil)
	return []*cli.Command{
		{
			Name:         "demo",
			OnUsageError: usageError,
			Usage:        "run the whole chain locally: a local Auth0-like issuer, A, C and B",
			Flags:        demoFlags.flags,
			Action: func(c *cli.Context) error {
				dc.From = demoFlags.sources(args)
				// Explained here, with the demo's own flags: some share a
				// name, not a variable, with a role's (--listen).
				return explain(demo.Run(c.Context, dc, deps), args, demoFlags)
			},
		},
		{
			Name:         "certs",
			OnUsageError: usageError,
			Usage:        "write a development trust bundle and one SPIFFE SVID per role",
			Flags:        certsFlags.flags,
			Action: func(*cli.Context) error {
				return explain(demo.WriteCerts(cc, deps.Stdout), args, certsFlags)
			},
		},
	}, []flagSet{demoFlags, certsFlags}
}
