package main

import (
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/dev/issuer"
	"github.com/trustchain/trustchain/adapters/dpop"
	"github.com/trustchain/trustchain/internal/testkit/mysqltest"
)

// TestReadmeRecipes runs the README's shell recipes as they are written, in
// one shell and one environment, as a reader pastes them: the built binary
// stands in for `go run .`, a local issuer for the Auth0 tenant, the
// embedded engine for MySQL, and free ports for the fixed ones. Between a
// recipe that starts the roles and the one that calls them, it waits for
// /readyz, as a reader would wait for the logs to settle.
func TestReadmeRecipes(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the README's recipes use %s, which is not installed", tool)
		}
	}
	bin := buildBinary(t, false)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}

	ts := httptest.NewUnstartedServer(nil)
	iss, err := issuer.New(issuer.Config{
		URL: "http://" + ts.Listener.Addr().String(), Audience: "https://trustchain.example/api",
		ClientID: "YOUR_CLIENT_ID", ClientSecret: "YOUR_CLIENT_SECRET", Scopes: []string{"read:products"},
		DPoP: readmeIssuerDPoP(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = iss
	ts.Start()
	t.Cleanup(ts.Close)
	dsn := mysqltest.FreshSchema(t, mysqltest.StartEmbedded(t))

	ports := map[string]string{}
	local := func(s string) string {
		s = strings.ReplaceAll(s, "https://YOUR_TENANT.us.auth0.com/", iss.Issuer())
		s = strings.ReplaceAll(s, "trustchain:secret@tcp(127.0.0.1:3306)/trustchain", dsn)
		return regexp.MustCompile(`\b[89]\d{3}\b`).ReplaceAllStringFunc(s, func(port string) string {
			if ports[port] == "" {
				ports[port] = freePort(t)
			}
			return ports[port]
		})
	}
	var script strings.Builder
	script.WriteString(`go() { if [ "$1" = run ] && [ "$2" = . ]; then shift 2; "$TRUSTCHAIN" "$@"; else command go "$@"; fi; }
trustchain() { "$TRUSTCHAIN" "$@"; }
ready() { for p in "$@"; do for i in $(seq 300); do curl -sf -o /dev/null "http://127.0.0.1:$p/readyz" && break; sleep 0.1; done; done; }
`)
	steps := []struct{ recipe, admins string }{
		{"laptop", "9092 9093 9090"}, {"laptop-call", ""}, {"mtls", "9192 9193 9190"}, {"mtls-call", ""}, {"dpop-call", ""},
	}
	// Every recipe in the README is run: a new one must be added here.
	for _, m := range regexp.MustCompile(`<!-- recipe: (\S+) -->`).FindAllSubmatch(readme, -1) {
		if !slices.ContainsFunc(steps, func(s struct{ recipe, admins string }) bool { return s.recipe == string(m[1]) }) {
			t.Errorf("README recipe %q is not run by this test", m[1])
		}
	}
	for _, step := range steps {
		recipe := readmeRecipe(t, readme, step.recipe)
		if strings.Contains(recipe, "--role=b") && !regexp.MustCompile(`(?m)^go run \. migrate up\b(.|\n)*^go run \. seed\b`).MatchString(recipe) {
			t.Errorf("recipe %q starts B without migrate up and seed", step.recipe)
		}
		script.WriteString(local(recipe))
		if step.admins != "" {
			script.WriteString(local("ready " + step.admins + "\n"))
		}
		script.WriteString("echo \"recipe " + step.recipe + " exit $?\"\n")
	}

	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TRUSTCHAIN=" + bin}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the roles run in the background: stop them all
	t.Cleanup(func() {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			time.Sleep(200 * time.Millisecond)
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	// A file, not a pipe: the roles started in the background keep their
	// copy of stdout open after the script is done.
	outFile, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	cmd.Stdout = outFile
	runErr := cmd.Run()
	out, err := os.ReadFile(outFile.Name())
	if err != nil {
		t.Fatal(err)
	}
	if runErr != nil {
		t.Fatalf("the recipes failed: %v\n%s", runErr, out)
	}
	for _, want := range []string{
		`{"products":[{"id":1,"name":"Laptop","price":1000},{"id":2,"name":"Mechanical Keyboard","price":89.99},{"id":3,"name":"USB-C Cable","price":19.99}],"serviceA_metadata":"request processed at `,
		"Link: </products?after=2&limit=2>; rel=\"next\"",
		"recipe laptop-call exit 0",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the recipes' output lacks %q:\n%s", want, out)
		}
	}
	// The mTLS chain serves the catalogue through A, and C refuses a caller
	// without a client certificate: the last curl fails its handshake.
	if n := strings.Count(string(out), `{"products":[{"id":1,"name":"Laptop"`); n != 4 {
		t.Errorf("the catalogue came back %d times, want 4 (twice without mTLS, once with, once with DPoP):\n%s", n, out)
	}
	if strings.Contains(string(out), "recipe mtls-call exit 0") {
		t.Errorf("C answered a caller without a client certificate:\n%s", out)
	}
	// DPoP: a bound token with its proof through the mTLS chain, a page
	// whose proof names no query, then the same token as Bearer refused.
	for _, want := range []string{
		`token_type: DPoP`,
		`{"products":[{"id":1,"name":"Laptop","price":1000}],"serviceA_metadata":"request processed at `,
		`Bearer error="invalid_token"`,
		"recipe dpop-call exit 0",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the DPoP recipe's output lacks %q:\n%s", want, out)
		}
	}
}

// readmeIssuerDPoP has the recipes' issuer bind tokens as Auth0 does for
// an API that requires DPoP, checking proofs with the edge's own verifier.
func readmeIssuerDPoP(t *testing.T) issuer.DPoP {
	v, err := dpop.New(dpop.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return issuer.DPoP{Check: v.TokenRequestKey, Algorithms: dpop.AlgorithmNames()}
}

// readmeRecipe returns the shell block under <!-- recipe: name -->.
func readmeRecipe(t *testing.T, readme []byte, name string) string {
	t.Helper()
	m := regexp.MustCompile("(?s)<!-- recipe: " + regexp.QuoteMeta(name) + " -->\n```sh\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatalf("README.md has no recipe %q", name)
	}
	return string(m[1])
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
