package app_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/trustchain/trustchain/adapters/dev/issuer"
)

// TestOverloadBench is the overload benchmark of issue 19, not a unit test:
// it builds the production binary, runs B, C and A as separate processes
// against MariaDB, each under GOMEMLIMIT=128MiB, and prints what each load
// did (README, "Overload"). It asserts nothing about speed. Run it with
//
//	OVERLOAD_BENCH=1 MYSQL_TEST_DSN='root@tcp(127.0.0.1:3306)/test' go test -run OverloadBench -v -timeout 30m ./app
func TestOverloadBench(t *testing.T) {
	dsn := os.Getenv("MYSQL_TEST_DSN")
	if os.Getenv("OVERLOAD_BENCH") == "" || dsn == "" || testing.Short() {
		t.Skip("set OVERLOAD_BENCH=1 and MYSQL_TEST_DSN to run the overload benchmark")
	}
	b := newOverloadBench(t, dsn)
	bigDur := 20 * time.Second
	if d, err := time.ParseDuration(os.Getenv("OVERLOAD_DURATION")); err == nil {
		bigDur = d
	}
	big, small := "/products?limit=1000", "/products?limit=10"

	var rows []string
	modes := []struct {
		name string
		args []string
	}{{"admission", nil}, {"no admission", []string{"--max-inflight=100000"}}}
	if os.Getenv("OVERLOAD_SILENT_ONLY") != "" {
		modes = nil
	}
	for _, mode := range modes {
		base := b.run(t, mode.args, big, 4, bigDur/2)
		flood := b.run(t, mode.args, big, 200, bigDur)
		rows = append(rows, base.row(mode.name+", big pages, 4 clients", base), flood.row(mode.name+", big pages, 200 clients", base))
		if mode.args == nil {
			// Peak throughput of small pages, then 4× its concurrency.
			var peak result
			for _, c := range []int{4, 16, 64} {
				if r := b.run(t, mode.args, small, c, bigDur/4); r.goodput() > peak.goodput() {
					peak = r
				}
			}
			b.peakConc = peak.clients
			rows = append(rows, peak.row(mode.name+", small pages, peak", peak))
		}
		over := b.run(t, mode.args, small, 4*b.peakConc, bigDur/2)
		rows = append(rows, over.row(fmt.Sprintf("%s, small pages, 4×peak", mode.name), over))
	}
	fmt.Println("| load | clients | 200/s | 503 shed | other | conn errors | p99 of 200 | median of 503 | peak RSS A / C / B (MiB) | /readyz failures | goodput vs 4 clients |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Println(r)
	}

	// Silent connections: the admin port (cap 64) behind 1,500, and the API
	// port with --max-connections=32 behind 200.
	for _, redial := range []bool{false, true} {
		how := "held open"
		if redial {
			how = "each dialled again as soon as it is closed"
		}
		admin, api := b.silent(t, true, 1500, redial), b.silent(t, false, 200, redial)
		fmt.Printf("admin port, 1,500 silent connections (%s): %d of 10 /healthz probes answered within 1 s\n", how, admin)
		fmt.Printf("API port (--max-connections=32), 200 silent connections (%s): %d of 10 new clients got 200 within 1 s\n", how, api)
	}
}

type overloadBench struct {
	bin, issuerURL, dsn, token string
	dir                        string
	peakConc                   int
}

func newOverloadBench(t *testing.T, rootDSN string) *overloadBench {
	dir := t.TempDir()
	b := &overloadBench{dir: dir, bin: filepath.Join(dir, "trustchain")}
	build := exec.Command("go", "build", "-tags", "nodemo", "-o", b.bin, ".")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	iss, err := issuer.New(issuer.Config{URL: "http://" + ln.Addr().String(), Audience: audience, ClientID: "bench", ClientSecret: "bench-secret", Scopes: []string{scope}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: iss}
	go func() { _ = srv.Serve(ln) }()
	b.issuerURL = iss.Issuer()
	t.Cleanup(func() { _ = srv.Close() })
	if b.token, err = iss.Mint(iss.DefaultClaims("auth0|bench")); err != nil {
		t.Fatal(err)
	}

	// A database of 1,200 products with 1 KB names (255 four-byte runes).
	server, _, _ := strings.Cut(rootDSN, ")/")
	name := fmt.Sprintf("overload_%d", time.Now().UnixNano()%1e9)
	root, err := sql.Open("mysql", server+")/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = root.Exec("DROP DATABASE " + name); root.Close() })
	if _, err := root.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	b.dsn = server + ")/" + name + "?parseTime=true"
	if out, err := b.command("migrate", "up").CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	db, err := sql.Open("mysql", b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	long := strings.Repeat("𝄞", 255)
	for i := 0; i < 1200; i += 100 {
		q := "INSERT INTO products (name, price) VALUES " + strings.TrimSuffix(strings.Repeat("(?, 9.99),", 100), ",")
		args := make([]any, 100)
		for j := range args {
			args[j] = long
		}
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func (b *overloadBench) command(args ...string) *exec.Cmd {
	cmd := exec.Command(b.bin, args...)
	cmd.Env = append(os.Environ(), "MYSQL_DSN="+b.dsn)
	return cmd
}

// procChain is B, C and A as processes.
type procChain struct {
	procs        []*exec.Cmd // b, c, a
	api, admins  []string
	readyzFailed atomic.Int64
	stopProbe    chan struct{}
	probeDone    sync.WaitGroup
}

func (b *overloadBench) start(t *testing.T, extra map[string][]string) *procChain {
	ch := &procChain{stopProbe: make(chan struct{})}
	up := ""
	for _, role := range []string{"b", "c", "a"} {
		api, adm := freePort(t), freePort(t)
		args := append([]string{"--role=" + role, "--listen=" + api, "--admin-listen=" + adm, "--peer-auth=off",
			"--oidc-issuer=" + b.issuerURL, "--oidc-audience=" + audience, "--log-level=warn"}, extra[role]...)
		if up != "" {
			args = append(args, "--upstream=http://"+up)
		}
		cmd := b.command(args...)
		cmd.Env = append(cmd.Env, "GOMEMLIMIT=128MiB")
		logf, err := os.Create(filepath.Join(b.dir, role+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ch.procs = append(ch.procs, cmd)
		ch.api, ch.admins = append(ch.api, api), append(ch.admins, adm)
		if !waitReady("http://"+adm+"/readyz", 30*time.Second) {
			ch.stop()
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("role %s not ready:\n%s", role, log)
		}
		up = api
	}
	// /readyz of every hop, every 200 ms, each within 1 s, while the load runs.
	for _, adm := range ch.admins {
		ch.probeDone.Add(1)
		go func() {
			defer ch.probeDone.Done()
			client := &http.Client{Timeout: time.Second}
			for {
				select {
				case <-ch.stopProbe:
					return
				case <-time.After(200 * time.Millisecond):
				}
				resp, err := client.Get("http://" + adm + "/readyz")
				if err != nil {
					ch.readyzFailed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					ch.readyzFailed.Add(1)
				}
			}
		}()
	}
	return ch
}

func (ch *procChain) stop() {
	select {
	case <-ch.stopProbe:
	default:
		close(ch.stopProbe)
	}
	ch.probeDone.Wait()
	for _, p := range ch.procs {
		_ = p.Process.Signal(syscall.SIGTERM)
		_ = p.Wait()
	}
}

// peakRSS is each process's high-water resident set (VmHWM), in MiB: a, c, b.
func (ch *procChain) peakRSS() [3]float64 {
	var out [3]float64
	for i, p := range ch.procs {
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Process.Pid))
		for _, l := range strings.Split(string(status), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == "VmHWM:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				out[2-i] = kb / 1024
			}
		}
	}
	return out
}

type result struct {
	clients         int
	dur             time.Duration
	ok, shed, other int
	shedNoRetry     int
	connErrs        int
	okLat, shedLat  []time.Duration
	rss             [3]float64
	readyzFailed    int64
	otherStatuses   map[int]int
}

func (r result) goodput() float64 {
	if r.dur == 0 {
		return 0
	}
	return float64(r.ok) / r.dur.Seconds()
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

func (r result) row(name string, base result) string {
	other := fmt.Sprint(r.other)
	if r.other > 0 {
		other = fmt.Sprint(r.otherStatuses)
	}
	shed := fmt.Sprintf("%d (%.0f%%)", r.shed, 100*float64(r.shed)/float64(max(1, r.ok+r.shed+r.other)))
	if r.shedNoRetry > 0 {
		shed += fmt.Sprintf(", %d without Retry-After", r.shedNoRetry)
	}
	return fmt.Sprintf("| %s | %d | %.1f | %s | %s | %d | %v | %v | %.0f / %.0f / %.0f | %d | %.2f× |",
		name, r.clients, r.goodput(), shed, other, r.connErrs,
		pct(r.okLat, 0.99).Round(time.Millisecond), pct(r.shedLat, 0.5).Round(100*time.Microsecond),
		r.rss[0], r.rss[1], r.rss[2], r.readyzFailed, r.goodput()/max(base.goodput(), 1e-9))
}

// run starts a fresh chain (so each peak RSS is this load's), puts
// clients on path at A for dur, each sending its next request as soon as
// the last is answered, and stops the chain.
func (b *overloadBench) run(t *testing.T, aArgs []string, path string, clients int, dur time.Duration) result {
	args := map[string][]string{"a": aArgs, "b": aArgs, "c": aArgs}
	ch := b.start(t, args)
	defer ch.stop()
	url := "http://" + ch.api[2] + path
	r := result{clients: clients, dur: dur, otherStatuses: map[int]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(dur)
	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local result
			local.otherStatuses = map[int]int{}
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("Authorization", "Bearer "+b.token)
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					local.connErrs++
					time.Sleep(10 * time.Millisecond)
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				took := time.Since(start)
				switch {
				case err != nil:
					local.connErrs++
				case resp.StatusCode == 200:
					local.ok++
					local.okLat = append(local.okLat, took)
				case resp.StatusCode == 503:
					local.shed++
					local.shedLat = append(local.shedLat, took)
					if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 {
						local.shedNoRetry++
					}
				default:
					local.other++
					local.otherStatuses[resp.StatusCode]++
				}
			}
			mu.Lock()
			defer mu.Unlock()
			r.ok, r.shed, r.other, r.connErrs, r.shedNoRetry = r.ok+local.ok, r.shed+local.shed, r.other+local.other, r.connErrs+local.connErrs, r.shedNoRetry+local.shedNoRetry
			r.okLat, r.shedLat = append(r.okLat, local.okLat...), append(r.shedLat, local.shedLat...)
			for k, v := range local.otherStatuses {
				r.otherStatuses[k] += v
			}
		}()
	}
	wg.Wait()
	r.rss = ch.peakRSS()
	r.readyzFailed = ch.readyzFailed.Load()
	t.Logf("%s c=%d: %d ok, %d shed, %d other %v, %d conn errors", path, clients, r.ok, r.shed, r.other, r.otherStatuses, r.connErrs)
	return r
}

// silent floods a port with n connections that never send a byte (with
// redial, each dialled again as soon as the server closes it), then counts the 10 new
// requests, 100 ms apart, answered 200 within 1 s: /healthz on the admin
// port, or GET /products on A's API port capped at 32 connections.
func (b *overloadBench) silent(t *testing.T, adminPort bool, n int, redial bool) int {
	ch := b.start(t, map[string][]string{"a": {"--max-connections=32"}})
	defer ch.stop()
	target, url, auth := ch.api[2], "http://"+ch.api[2]+"/products", "Bearer "+b.token
	if adminPort {
		target, url, auth = ch.admins[2], "http://"+ch.admins[2]+"/healthz", ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1)
			for ctx.Err() == nil {
				c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", target)
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				stop := context.AfterFunc(ctx, func() { c.Close() })
				_, _ = c.Read(buf) // until the server closes it
				stop()
				c.Close()
				if !redial {
					<-ctx.Done()
				}
			}
		}()
	}
	time.Sleep(2 * time.Second) // the flood is in place
	answered := 0
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range 10 {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				answered++
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	return answered
}

func waitReady(url string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}
