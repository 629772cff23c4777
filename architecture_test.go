package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/trustchain/trustchain"

// TestDependenciesPointInwards keeps the hexagon honest: domain uses the
// standard library only, ports adds only domain, adapters never reach the
// composition root nor each other, only tests import the test kits under
// internal/testkit, nothing but main and the demo's wiring imports app, and the development packages (the demo's
// issuer, page and CA under adapters/dev) are wired by app/demo alone,
// which only main imports.
func TestDependenciesPointInwards(t *testing.T) {
	imports := productionImports(t)
	if len(imports) < 5 {
		t.Fatalf("found only %d packages; is the walk broken?", len(imports))
	}
	for pkg, deps := range imports {
		for _, dep := range deps {
			if problem := ruleBroken(pkg, dep); problem != "" {
				t.Errorf("%s imports %s: %s", pkg, dep, problem)
			}
		}
	}
}

func TestRuleBrokenCatchesViolations(t *testing.T) {
	// The rule itself must bite, or the test above proves nothing.
	for _, tt := range []struct{ pkg, dep string }{
		{"domain", "github.com/uptrace/bun"},
		{"domain", module + "/ports"},
		{"ports", module + "/adapters/mysql"},
		{"ports", "github.com/coreos/go-oidc/v3/oidc"},
		{"adapters/httpapi", module + "/app"},
		{"domain", module + "/app"},
		{"adapters/httpapi", module + "/adapters/telemetry"},
		{"adapters/telemetry", module + "/adapters/httpapi"},
		{"adapters/mysql", module + "/adapters/memory"},
		{"adapters/mysql", module + "/internal/testkit/storetest"},
		{"app", module + "/internal/testkit/mysqltest"},
		{".", module + "/internal/testkit/testclock"},
		{"adapters/storetest", module + "/adapters/mysql"},
		{"adapters/httpapi/client", module + "/adapters/httpapi/server"},
		{"adapters/httpapi/server", module + "/adapters/httpapi/client"},
		{"adapters/httpapi/wire", module + "/adapters/httpapi/server"},
		{"adapters/httpapi/wire", module + "/adapters/httpapi/client"},
		{"app", module + "/adapters/dev/spiffeca"},
		{"app", module + "/app/demo"},
		{".", module + "/adapters/dev/issuer"},
		{"adapters/httpapi", module + "/adapters/dev/page"},
		{"adapters/dev/page", module + "/adapters/dev/issuer"},
		{"adapters/dev/issuer", module + "/app"},
		{"adapters/dev/issuer", module + "/adapters/httpapi"},
		{"adapters/oauthlogin", module + "/app/demo"},
	} {
		if ruleBroken(tt.pkg, tt.dep) == "" {
			t.Errorf("%s -> %s was allowed", tt.pkg, tt.dep)
		}
	}
	for _, tt := range []struct{ pkg, dep string }{
		{"domain", "encoding/json"},
		{"ports", module + "/domain"},
		{"adapters/httpapi", module + "/ports"},
		{"adapters/httpapi", module + "/domain"},
		{"adapters/httpapi/client", module + "/adapters/httpapi/wire"},
		{"adapters/httpapi/server", module + "/adapters/httpapi/wire"},
		{"adapters/mysql", module + "/migrations"},
		{"internal/testkit/storetest", module + "/adapters/mysql"},
		{"internal/testkit/storetest", module + "/adapters/memory"},
		{"internal/testkit/storetest", module + "/internal/testkit/mysqltest"},
		{"internal/testkit/browsertest", module + "/internal/testkit/logbuf"},
		{"app", module + "/adapters/mysql"},
		{".", module + "/app"},
		{".", module + "/app/demo"},
		{"app/demo", module + "/app"},
		{"app/demo", module + "/adapters/dev/issuer"},
		{"app/demo", module + "/adapters/dev/page"},
		{"app/demo", module + "/adapters/dev/spiffeca"},
		{"app/demo", module + "/adapters/httpapi"},
		{"adapters/dev/issuer", module + "/domain"},
	} {
		if p := ruleBroken(tt.pkg, tt.dep); p != "" {
			t.Errorf("%s -> %s refused: %s", tt.pkg, tt.dep, p)
		}
	}
}

func ruleBroken(pkg, dep string) string {
	internal := strings.HasPrefix(dep, module+"/")
	rel := strings.TrimPrefix(dep, module+"/")
	stdlib := !strings.Contains(strings.SplitN(dep, "/", 2)[0], ".")
	switch {
	case pkg == "domain" || strings.HasPrefix(pkg, "domain/"):
		if !stdlib {
			return "domain may import the standard library only"
		}
	case pkg == "ports":
		if !stdlib && dep != module+"/domain" {
			return "ports may import the standard library and domain only"
		}
	case strings.HasPrefix(pkg, "adapters/"):
		if internal && (rel == "app" || strings.HasPrefix(rel, "app/") || rel == "") {
			return "adapters must not depend on the composition root"
		}
		if internal && strings.HasPrefix(rel, "adapters/") && adapterOf(rel) != adapterOf(pkg) {
			return "adapters meet only in app: one adapter must not import another"
		}
		if internal && adapterOf(pkg) == httpAdapter && adapterOf(rel) == httpAdapter && rel != httpWire {
			return "the HTTP server and client meet only in its wire package"
		}
	}
	switch {
	case internal && rel == "app" && pkg != "." && pkg != "app/demo":
		return "only main and the demo's wiring may import app"
	case internal && rel == "app/demo" && pkg != ".":
		return "only main may import the demo"
	case internal && strings.HasPrefix(rel, "adapters/dev/") && pkg != "app/demo" && adapterOf(rel) != adapterOf(pkg):
		return "development packages are wired by app/demo alone"
	case internal && testKit(rel) && !testKit(pkg):
		return "only tests and other test kits import a test kit"
	}
	return ""
}

// The HTTP adapter's server and client share only its wire format: an
// import between them, or from wire back up to either, would let one end
// lean on the other's state.
const (
	httpAdapter = "adapters/httpapi"
	httpWire    = httpAdapter + "/wire"
)

// adapterOf is the adapter a package belongs to: adapters/mysql for a
// package inside it (adapters/mysql/<sub>) too, adapters/dev/issuer for its
// subpackages.
func adapterOf(rel string) string {
	n := 2
	if strings.HasPrefix(rel, "adapters/dev/") {
		n = 3
	}
	parts := strings.SplitN(rel, "/", n+1)
	if len(parts) < n {
		return rel
	}
	return strings.Join(parts[:n], "/")
}

// testKit reports whether pkg is a kit only tests import: the contract
// suite, the MySQL test servers, the browser, the log buffer, the clock.
// They live in one folder, and may stand up any adapter.
func testKit(pkg string) bool {
	return strings.HasPrefix(pkg, "internal/testkit/")
}

// productionImports maps each package directory to the imports of its
// non-test files.
func productionImports(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		for _, spec := range f.Imports {
			p, _ := strconv.Unquote(spec.Path.Value)
			out[dir] = append(out[dir], p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestProductionBuildImportsNoDemo: the production build (-tags nodemo, as
// the Dockerfile makes it) depends on no development package and not on
// app/demo, while the default build keeps them for `go run . demo`. The
// binary itself is searched in TestBinaryRunsTheChain.
func TestProductionBuildImportsNoDemo(t *testing.T) {
	deps := func(tags ...string) []string {
		t.Helper()
		out, err := exec.Command("go", append(append([]string{"list"}, tags...), "-deps", ".")...).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %v: %v\n%s", tags, err, out)
		}
		return strings.Fields(string(out))
	}
	isDemo := func(pkg string) bool {
		return pkg == module+"/app/demo" || strings.HasPrefix(pkg, module+"/adapters/dev/")
	}
	production := deps("-tags", "nodemo")
	if !slices.Contains(production, module+"/app") || !slices.Contains(production, module+"/adapters/oauthlogin") {
		t.Fatalf("go list -deps does not list the production packages: %v", production)
	}
	for _, pkg := range production {
		if isDemo(pkg) {
			t.Errorf("the production build links %s", pkg)
		}
	}
	full := slices.DeleteFunc(deps(), func(pkg string) bool { return !isDemo(pkg) })
	for _, want := range []string{"/app/demo", "/adapters/dev/issuer", "/adapters/dev/page", "/adapters/dev/spiffeca"} {
		if !slices.Contains(full, module+want) {
			t.Errorf("the default build lacks %s, which `go run . demo` needs; it has %v", want, full)
		}
	}
}
