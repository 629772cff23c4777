// Command trustchain serves a product catalogue through a zero-trust chain:
// one binary, three roles (A, the gateway; C; B, on MySQL), each verifying
// the caller's Auth0 token and workload identity itself. main only turns
// flags and environment into a config and hands it to package app.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/trustchain/trustchain/app"
)

// Stamped at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = ""
	commit  = ""
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "trustchain: "+msg)
		}
		os.Exit(exitCode(err))
	}
}

// errUsage marks a command line that names no command or flag that exists:
// it exits 2, as a usage error conventionally does; anything else exits 1.
var errUsage = errors.New("usage")

// usageErr is a usage error with its message.
type usageErr struct{ msg string }

func (e usageErr) Error() string        { return e.msg }
func (e usageErr) Is(target error) bool { return target == errUsage }

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// shortUsage is what `trustchain` alone prints: where to start.
const shortUsage = `usage: trustchain demo                 run the whole chain on this machine, with a page to log in
       trustchain --role a|b|c ...     serve one role of the chain
       trustchain --help               every command and flag
`

// run is the whole program, testable in-process: it parses args, runs the
// chosen command until ctx ends, and returns its error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		cfg         = app.Defaults()
		migrate     = app.MigrateDefaults()
		login       = app.LoginDefaults()
		proof       app.ProofConfig
		showVersion bool
		build       = buildInfo()
		deps        = app.Deps{Stdout: stdout, Stderr: stderr, Build: build}
	)
	serve := flagsOf(&cfg, app.DefaultText)
	dbFlags, loginFlags := flagsOf(&migrate, nil), flagsOf(&login, nil)
	proofFlags := flagsOf(&proof, nil)
	devCmds, devFlags := devCommands(deps, args)
	migrateCmd := func(name, usage string, dir app.MigrateDirection) *cli.Command {
		return &cli.Command{Name: name, Usage: usage, Flags: dbFlags.flags, OnUsageError: usageError, Action: func(c *cli.Context) error {
			return app.Migrate(c.Context, migrate, dir, stdout)
		}}
	}
	cliApp := &cli.App{
		Name:           "trustchain",
		Usage:          "serve a product catalogue through a zero-trust chain (A -> C -> B -> MySQL)",
		Writer:         stdout,
		ErrWriter:      stderr,
		HideVersion:    true,
		ExitErrHandler: func(*cli.Context, error) {}, // run returns; main exits once
		OnUsageError:   usageError,
		Flags:          append(serve.flags, &cli.BoolFlag{Name: "version", Destination: &showVersion, Usage: "print version, commit and Go version"}),
		Action: func(c *cli.Context) error {
			if showVersion {
				fmt.Fprintln(stdout, build.String())
				return nil
			}
			if c.Args().Present() {
				return unknownCommand(c)
			}
			if len(args) < 2 && cfg.Role == "" {
				// Nothing asked for, not even by the environment: point at
				// the ways in rather than list three missing settings.
				fmt.Fprint(stderr, shortUsage)
				return usageErr{}
			}
			serve.finish(c)
			if !cfg.Pprof {
				// Only --pprof reads heap profiles. Without a reader, sampling
				// still fills the runtime's 1.4 MB profile hash, most of it
				// resident.
				runtime.MemProfileRate = 0
			}
			cfg.CommandLine = commandLine(args, serve.names)
			return app.Serve(c.Context, cfg, deps)
		},
		Commands: []*cli.Command{
			{
				Name:         "migrate",
				OnUsageError: usageError,
				Usage:        "apply (up), roll back (down) or list (status) the embedded MySQL migrations",
				Flags:        dbFlags.flags,
				// Reached only when no subcommand matched.
				Action: unknownCommand,
				Subcommands: []*cli.Command{
					migrateCmd("up", "apply pending migrations", app.MigrateUp),
					migrateCmd("down", "roll back the last migration group", app.MigrateDown),
					migrateCmd("status", "list applied and pending migrations", app.MigrateStatus),
				},
			},
			{
				Name:         "seed",
				OnUsageError: usageError,
				Usage:        "load the sample catalogue into MySQL (safe to run twice)",
				Flags:        dbFlags.flags,
				Action: func(c *cli.Context) error {
					return app.Seed(c.Context, migrate, stdout)
				},
			},
			{
				Name:         "login",
				OnUsageError: usageError,
				Usage:        "log in as a user with the device code grant (Auth0 or the demo's issuer) and print the access token",
				Flags:        loginFlags.flags,
				Action: func(c *cli.Context) error {
					return app.Login(c.Context, login, stdout, stderr)
				},
			},
			{
				Name:         "proof",
				OnUsageError: usageError,
				Usage:        "print a fresh DPoP proof for one request, signed with the key a bound token is bound to",
				Flags:        proofFlags.flags,
				Action: func(*cli.Context) error {
					return app.Proof(proof, stdout)
				},
			},
		},
	}
	cliApp.Commands = append(cliApp.Commands, devCmds...)
	return explain(cliApp.RunContext(ctx, args), args, append(devFlags, serve, dbFlags, loginFlags, proofFlags)...)
}

// usageError reports a command line that does not parse (an unknown flag, a
// value of the wrong type) as one line, instead of the whole help, with the
// closest flag when one is close.
func usageError(c *cli.Context, err error, _ bool) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		var names []string
		for _, f := range c.Command.Flags {
			names = append(names, f.Names()...)
		}
		if c.Command.Name == "" { // the root's flags live on the app
			for _, f := range c.App.Flags {
				names = append(names, f.Names()...)
			}
		}
		msg += didYouMean("--", name, names)
	}
	return usageErr{msg + " (see --help)"}
}

// unknownCommand refuses the first argument as a command of c, with the
// closest command when one is close, or says which commands c has.
func unknownCommand(c *cli.Context) error {
	cmds := c.App.Commands
	if c.Command.Name != "" {
		cmds = c.Command.Subcommands
	}
	var names []string
	for _, cmd := range cmds {
		if !cmd.Hidden && cmd.Name != "help" {
			names = append(names, cmd.Name)
		}
	}
	if !c.Args().Present() {
		return usageErr{fmt.Sprintf("%s needs a command: one of %s (see --help)", c.Command.FullName(), strings.Join(names, ", "))}
	}
	name := c.Args().First()
	return usageErr{fmt.Sprintf("unknown command %q%s (see --help)", name, didYouMean("", name, names))}
}

// didYouMean suggests the candidate closest to name, when it is close: at
// most a third of name's letters off (a typo, a swap), never a guess.
func didYouMean(prefix, name string, candidates []string) string {
	best, bestDist := "", len(name)/3+1
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %s%s?", prefix, best)
}

// editDistance counts the letters to insert, delete, change or swap to
// turn a into b (optimal string alignment).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// flagSet is the command-line flags of one config struct.
type flagSet struct {
	flags []cli.Flag
	names []string
	env   map[string]string // flag name -> environment variable
	// slices are copied into the struct after parsing: urfave/cli keeps
	// their values in its own type.
	slices map[string]*[]string
}

// flagsOf derives the flags from the struct dst points to: each field with
// a `flag` tag, its `env` variable and `usage` text, and its current value
// as the default. dst's fields are the flags' destinations. defaultText,
// when set, describes defaults that the zero value cannot show.
func flagsOf(dst any, defaultText func(string) string) flagSet {
	fs := flagSet{env: map[string]string{}, slices: map[string]*[]string{}}
	v := reflect.ValueOf(dst).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		name := f.Tag.Get("flag")
		if name == "" || name == "-" {
			continue
		}
		var envVars []string
		if env := f.Tag.Get("env"); env != "" {
			envVars = []string{env}
			fs.env[name] = env
		}
		usage, dt := f.Tag.Get("usage"), ""
		if defaultText != nil {
			dt = defaultText(name)
		}
		var flag cli.Flag
		switch p := v.Field(i).Addr().Interface().(type) {
		case *string:
			flag = &cli.StringFlag{Name: name, EnvVars: envVars, Usage: usage, Value: *p, Destination: p, DefaultText: dt}
		case *int:
			flag = &cli.IntFlag{Name: name, EnvVars: envVars, Usage: usage, Value: *p, Destination: p, DefaultText: dt}
		case *bool:
			flag = &cli.BoolFlag{Name: name, EnvVars: envVars, Usage: usage, Value: *p, Destination: p, DefaultText: dt}
		case *time.Duration:
			flag = &cli.DurationFlag{Name: name, EnvVars: envVars, Usage: usage, Value: *p, Destination: p, DefaultText: dt}
		case *[]string:
			flag = &cli.StringSliceFlag{Name: name, EnvVars: envVars, Usage: usage, Value: cli.NewStringSlice(*p...), DefaultText: dt}
			fs.slices[name] = p
		default:
			panic(fmt.Sprintf("flag %s: field type %s has no flag kind", name, f.Type)) // a programming error, caught by tests
		}
		fs.flags = append(fs.flags, flag)
		fs.names = append(fs.names, name)
	}
	return fs
}

// finish copies the parsed list flags into the struct.
func (fs flagSet) finish(c *cli.Context) {
	for name, p := range fs.slices {
		*p = c.StringSlice(name)
	}
}

// commandLine returns which of names were given as flags in args, as
// opposed to the environment: --name, --name=value, -name or -name=value,
// before a "--".
func commandLine(args, names []string) map[string]bool {
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	given := map[string]bool{}
	for _, a := range args {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if known[name] {
			given[name] = true
		}
	}
	return given
}

// explain rewrites a config error with one line per problem, each naming
// the flag and its environment variable, and saying so when the value came
// from that variable rather than from args.
func explain(err error, args []string, sets ...flagSet) error {
	var cfgErr *app.ConfigError
	if !errors.As(err, &cfgErr) {
		return err
	}
	envOf := map[string]string{}
	for _, fs := range sets {
		for name, env := range fs.env {
			envOf[name] = env
		}
	}
	lines := make([]string, 0, len(cfgErr.Problems))
	for _, p := range cfgErr.Problems {
		name := "--" + p.Flag
		if env := envOf[p.Flag]; env != "" {
			name += " [" + fromEnv(env, p.Flag, args) + "]"
		}
		lines = append(lines, "  "+name+": "+p.Message)
	}
	return fmt.Errorf("invalid configuration:\n%s", strings.Join(lines, "\n"))
}

// fromEnv names env, adding "(from the environment)" when the flag's value
// came from it: set there, and not given in args.
func fromEnv(env, flag string, args []string) string {
	if os.Getenv(env) == "" || commandLine(args, []string{flag})[flag] {
		return env
	}
	return env + " (from the environment)"
}

// sources says where each of fs's flags that is set came from: "--name"
// when args give it, "VAR (from the environment)" when its variable does.
func (fs flagSet) sources(args []string) map[string]string {
	given := commandLine(args, fs.names)
	out := map[string]string{}
	for _, name := range fs.names {
		if env := fs.env[name]; given[name] {
			out[name] = "--" + name
		} else if env != "" {
			if from := fromEnv(env, name, args); from != env {
				out[name] = from
			}
		}
	}
	return out
}

// buildInfo reads the version stamped by -ldflags or, for `go install`/`go
// run`, the module and VCS data the Go toolchain records.
func buildInfo() app.BuildInfo {
	b := app.BuildInfo{Version: version, Commit: commit}
	if info, ok := debug.ReadBuildInfo(); ok {
		b.GoVersion = info.GoVersion
		if b.Version == "" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && b.Commit == "" {
				b.Commit = s.Value
			}
		}
	}
	if b.Version == "" || b.Version == "(devel)" {
		b.Version = "dev"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	return b
}
