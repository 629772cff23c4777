package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/dev/issuer"
	"github.com/trustchain/trustchain/adapters/dev/spiffeca"
	"github.com/trustchain/trustchain/internal/testkit/mysqltest"
)

// buildBinary compiles trustchain: the production build as the Dockerfile
// makes it (-tags nodemo, stripped), or with production false the default
// build, demo and certs included, that `go run .` gives a reader.
func buildBinary(t *testing.T, production bool) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "trustchain")
	args := []string{"build", "-trimpath", "-ldflags", "-X main.version=v9.9.9-test -X main.commit=feedbeef", "-o", bin}
	if production {
		args = []string{"build", "-tags", "nodemo", "-trimpath", "-ldflags", "-s -w -X main.version=v9.9.9-test -X main.commit=feedbeef", "-o", bin}
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinaryRunsTheChain drives the production binary: migrate and seed a
// MySQL (the embedded engine, over the wire protocol), run B, C and A as
// separate processes with native SPIFFE mTLS from development certificates
// the test writes, and call A.
func TestBinaryRunsTheChain(t *testing.T) {
	bin := buildBinary(t, true)

	t.Run("no demo, no dev issuer, page or CA", func(t *testing.T) {
		checkNoDemo(t, bin)
	})

	t.Run("test-only dependencies stay out of the binary", func(t *testing.T) {
		out, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
		if err != nil {
			t.Fatalf("go version -m: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "github.com/go-sql-driver/mysql") {
			t.Fatal("go version -m does not list the binary's modules")
		}
		for _, testOnly := range []string{"dolthub", "sigs.k8s.io/kustomize", "istio.io/client-go", "k8s.io/api", "lestrrat-go/jwx"} {
			if strings.Contains(string(out), testOnly) {
				t.Errorf("the production binary contains %s", testOnly)
			}
		}
	})

	t.Run("version", func(t *testing.T) {
		out, err := exec.Command(bin, "--version").Output()
		if err != nil || !strings.HasPrefix(string(out), "trustchain v9.9.9-test (commit feedbeef, go1.") {
			t.Fatalf("--version = %q, %v", out, err)
		}
	})

	dsn := mysqltest.FreshSchema(t, mysqltest.StartEmbedded(t))
	for _, args := range [][]string{{"migrate", "up"}, {"seed"}, {"seed"}, {"migrate", "status"}} {
		out, err := runBinary(bin, append(args, "--mysql-dsn", dsn)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		if args[0] == "migrate" && !strings.Contains(out, "applied") {
			t.Fatalf("%v printed %q", args, out)
		}
	}

	certs := t.TempDir()
	if _, err := spiffeca.WriteDevCerts(certs, "cluster.local", "default", []string{"service-a", "service-b", "service-c"}, time.Hour); err != nil {
		t.Fatal(err)
	}

	ts := httptest.NewUnstartedServer(nil)
	iss, err := issuer.New(issuer.Config{URL: "http://" + ts.Listener.Addr().String(), Audience: "https://api.test", ClientID: "c", ClientSecret: "s", Scopes: []string{"read:products"}})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = iss
	ts.Start()
	t.Cleanup(ts.Close)

	common := []string{"--oidc-issuer", iss.Issuer(), "--oidc-audience", "https://api.test", "--required-scope", "read:products",
		"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--peer-auth", "mtls", "--tls-bundle", filepath.Join(certs, "bundle.pem")}
	identity := func(sa string) []string {
		return []string{"--tls-cert", filepath.Join(certs, sa+".pem"), "--tls-key", filepath.Join(certs, sa+"-key.pem")}
	}
	b := startRole(t, bin, append(append([]string{"--role=b", "--mysql-dsn", dsn}, identity("service-b")...), common...)...)
	c := startRole(t, bin, append(append([]string{"--role=c", "--upstream", "https://" + b.api}, identity("service-c")...), common...)...)
	a := startRole(t, bin, append(append([]string{"--role=a", "--upstream", "https://" + c.api}, identity("service-a")...), common...)...)

	claims := iss.DefaultClaims("auth0|user123")
	token, err := iss.Mint(claims)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+a.api+"/products", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := regexp.MustCompile(`^\{"products":\[\{"id":1,"name":"Laptop","price":1000\},\{"id":2,"name":"Mechanical Keyboard","price":89.99\},\{"id":3,"name":"USB-C Cable","price":19.99\}\],"serviceA_metadata":"request processed at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"\}\n$`)
	if resp.StatusCode != 200 || !want.Match(body) {
		t.Fatalf("A answered %d: %s", resp.StatusCode, body)
	}

	// Graceful stop: SIGTERM, exit 0, in the order an operator would.
	for _, p := range []*role{a, c, b} {
		p.stop(t)
	}
}

func runBinary(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

type role struct {
	cmd     *exec.Cmd
	api     string
	admin   string
	stopped bool
}

// startRole runs one role, learns its bound ports from its "listening" log
// lines and waits until /readyz passes.
func startRole(t *testing.T, bin string, args ...string) *role {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // nothing inherited: flags only
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &role{cmd: cmd}
	t.Cleanup(func() {
		if !r.stopped {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	addrs := make(chan [2]string, 1)
	go func() {
		var api, admin string
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Msg, Server, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				if line.Server == "api" {
					api = line.Addr
				} else if line.Server == "admin" {
					admin = line.Addr
				}
				if api != "" && admin != "" {
					addrs <- [2]string{api, admin}
				}
			}
		}
	}()
	select {
	case a := <-addrs:
		r.api, r.admin = a[0], a[1]
	case <-time.After(20 * time.Second):
		t.Fatalf("%v did not start listening", args[0])
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + r.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v never became ready", args[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *role) stop(t *testing.T) {
	t.Helper()
	r.stopped = true
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Errorf("%s exited with %v after SIGTERM, want 0", r.cmd.Args[1], err)
		}
	case <-time.After(20 * time.Second):
		_ = r.cmd.Process.Kill()
		t.Errorf("%s did not stop after SIGTERM", r.cmd.Args[1])
	}
}

// checkNoDemo proves the production binary links no demo: none of the
// adapters/dev packages nor app/demo (their import paths stay in the
// function table that -s keeps), none of the templates of the demo page
// and issuer (embedded verbatim when linked), and `demo` and `certs` say
// so in one line. The migrations and a production package, found the same
// way, show that the search sees what is linked.
func checkNoDemo(t *testing.T, bin string) {
	t.Helper()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, present := range []string{module + "/adapters/oidc.", module + "/app.", module + "/adapters/oauthlogin."} {
		if !bytes.Contains(data, []byte(present)) {
			t.Fatalf("the binary has no %s: the search does not see linked packages", present)
		}
	}
	for _, absent := range []string{module + "/adapters/dev/", module + "/app/demo."} {
		if bytes.Contains(data, []byte(absent)) {
			t.Errorf("the production binary links %s", absent)
		}
	}
	embedded := func(glob string) map[string][]byte {
		t.Helper()
		files, err := filepath.Glob(glob)
		if err != nil || len(files) == 0 {
			t.Fatalf("no files match %s (%v)", glob, err)
		}
		out := map[string][]byte{}
		for _, f := range files {
			if out[f], err = os.ReadFile(f); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	for f, sql := range embedded("migrations/*.sql") {
		if !bytes.Contains(data, sql) {
			t.Fatalf("the binary does not hold %s verbatim: the search does not see embedded files", f)
		}
	}
	for f, tmpl := range embedded("adapters/dev/*/templates/*") {
		if bytes.Contains(data, tmpl) {
			t.Errorf("the production binary holds %s", f)
		}
	}
	for _, cmd := range []string{"demo", "certs"} {
		out, err := runBinary(bin, cmd, "--listen", "127.0.0.1:0")
		var exit *exec.ExitError
		if !errors.As(err, &exit) || strings.Count(out, "\n") != 1 || !strings.Contains(out, "this build has no demo") {
			t.Errorf("%s: %v, printed %q; want one line saying this build has no demo, and a failure", cmd, err, out)
		}
	}
}
