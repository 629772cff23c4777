// Command render writes every deploy overlay as plain YAML, one file per
// overlay, for tools that take files (deploy/validate.sh runs istioctl
// validate on them).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/trustchain/trustchain/deploy"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	root := fs.String("root", "deploy", "the deploy folder holding overlays/")
	out := fs.String("out", "", "folder to write <overlay>.yaml into (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("-out is required")
	}
	files, err := deploy.WriteAll(*root, *out)
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Println(f)
	}
	return nil
}
