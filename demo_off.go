//go:build nodemo

package main

import (
	"errors"

	"github.com/urfave/cli/v2"

	"github.com/trustchain/trustchain/app"
)

// errNoDemo is what `demo` and `certs` answer in the production build,
// which links neither the demo nor its issuer, page and CA.
var errNoDemo = errors.New("this build has no demo (built with -tags nodemo): build without the tag for demo and certs")

// devCommands keeps the names `demo` and `certs`, hidden, so that calling
// them says in one line why they are missing, whatever the arguments.
func devCommands(app.Deps, []string) ([]*cli.Command, []flagSet) {
	var cmds []*cli.Command
	for _, name := range []string{"demo", "certs"} {
		cmds = append(cmds, &cli.Command{
			Name:            name,
			Hidden:          true,
			SkipFlagParsing: true,
			HideHelp:        true,
			Action:          func(*cli.Context) error { return errNoDemo },
		})
	}
	return cmds, nil
}
