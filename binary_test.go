package main

import (
	"bufio"
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

	"github.com/trustchain/trustchain/adapters/devissuer"
	"github.com/trustchain/trustchain/internal/testkit/mysqltest"
)

// buildBinary compiles trustchain the way the Dockerfile does.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "trustchain")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version=v9.9.9-test -X main.commit=feedbeef", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinaryRunsTheChain drives the built binary: migrate and seed a MySQL
// (the embedded engine, over the wire protocol), write dev certificates,
// run B, C and A as separate processes with native SPIFFE mTLS, and call A.
func TestBinaryRunsTheChain(t *testing.T) {
	bin := buildBinary(t)

	t.Run("test-only dependencies stay out of the binary", func(t *testing.T) {
		out, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
		if err != nil {
			t.Fatalf("go version -m: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "github.com/go-sql-driver/mysql") {
			t.Fatal("go version -m does not list the binary's modules")
		}
		for _, testOnly := range []string{"dolthub", "sigs.k8s.io/kustomize", "istio.io/client-go", "k8s.io/api"} {
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
	if out, err := runBinary(bin, "certs", "--out", certs); err != nil {
		t.Fatalf("certs: %v\n%s", err, out)
	}

	ts := httptest.NewUnstartedServer(nil)
	iss, err := devissuer.New(devissuer.Config{URL: "http://" + ts.Listener.Addr().String(), Audience: "https://api.test", ClientID: "c", ClientSecret: "s", Scopes: []string{"read:products"}})
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
