package server_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/httpapi/server"
	"github.com/trustchain/trustchain/internal/testkit/logbuf"
)

// rawExchange writes raw on a new TCP connection and reads one answer.
func rawExchange(tb testing.TB, addr, raw string) (*http.Response, string) {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		tb.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		tb.Fatalf("read the answer to %.40q: %v", raw, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// head is a GET whose request line, headers and blank line take exactly n
// bytes.
func head(tb testing.TB, n int) string {
	tb.Helper()
	const start, end = "GET /products HTTP/1.1\r\nHost: x\r\nX-Pad: ", "\r\n\r\n"
	pad := n - len(start) - len(end)
	if pad < 1 {
		tb.Fatalf("a head of %d bytes is too short", n)
	}
	return start + strings.Repeat("a", pad) + end
}

// TestServersOwnRefusalsAreAccounted: requests net/http refuses before any
// handler, and the asterisk form, get X-Request-Id, this API's JSON error
// shape, and an access-log line with the same id, over a real connection.
func TestServersOwnRefusalsAreAccounted(t *testing.T) {
	logs := &logbuf.Buffer{}
	srv := startLoggedServer(t, newAPI(t, logs), server.DefaultLimits(time.Second), logs)
	tests := []struct {
		name       string
		raw        string
		wantStatus int
		wantCode   string
	}{
		{"malformed request line", "NOT A REQUEST LINE AT ALL\r\n\r\n", 400, "invalid_request"},
		{"malformed header", "GET /products HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400, "invalid_request"},
		{"no Host", "GET /products HTTP/1.1\r\n\r\n", 400, "invalid_request"},
		{"unknown transfer coding", "GET /products HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: rot13\r\n\r\n", 501, "not_implemented"},
		{"HTTP/2.0 in HTTP/1 form", "GET /products HTTP/2.0\r\nHost: x\r\n\r\n", 505, "http_version_not_supported"},
		{"a head of 16 KiB and one byte", head(t, server.MaxRequestHead+1), 431, "headers_too_large"},
		{"GET *", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid_request"},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := rawExchange(t, srv.Addr(), tt.raw)
			id := resp.Header.Get("X-Request-Id")
			if resp.StatusCode != tt.wantStatus || id == "" {
				t.Fatalf("answer %d, X-Request-Id %q: %s", resp.StatusCode, id, body)
			}
			if tt.wantCode == "" {
				if resp.Header.Get("Allow") != "GET, HEAD" || body != "" {
					t.Fatalf("OPTIONS * = Allow %q, body %q", resp.Header.Get("Allow"), body)
				}
			} else {
				var e struct {
					Error, Message string
					RequestID      string `json:"request_id"`
				}
				if err := json.Unmarshal([]byte(body), &e); err != nil || resp.Header.Get("Content-Type") != "application/json" {
					t.Fatalf("body %q (%v), Content-Type %q", body, err, resp.Header.Get("Content-Type"))
				}
				if e.Error != tt.wantCode || e.Message == "" || e.RequestID != id {
					t.Fatalf("body = %+v, want code %q and request id %q", e, tt.wantCode, id)
				}
			}
			if !logLineWith(logs.String(), id, tt.wantStatus) {
				t.Fatalf("no access-log line with request id %s and status %d in\n%s", id, tt.wantStatus, logs)
			}
		})
	}
}

// TestHeadLimitIsExactly16KiB: a head of exactly 16 KiB is read and
// answered by the API (401: no token); one byte more is 431.
func TestHeadLimitIsExactly16KiB(t *testing.T) {
	srv := startServer(t, newAPI(t, io.Discard), server.DefaultLimits(time.Second))
	for n, want := range map[int]int{
		server.MaxRequestHead - 1: http.StatusUnauthorized,
		server.MaxRequestHead:     http.StatusUnauthorized,
		server.MaxRequestHead + 1: http.StatusRequestHeaderFieldsTooLarge,
		server.MaxRequestHead + 2: http.StatusRequestHeaderFieldsTooLarge,
	} {
		if resp, body := rawExchange(t, srv.Addr(), head(t, n)); resp.StatusCode != want {
			t.Errorf("a head of %d bytes: %d, want %d: %s", n, resp.StatusCode, want, body)
		}
	}
}

// logLineWith reports whether logs hold a request line for id with status.
func logLineWith(logs, id string, status int) bool {
	for _, line := range strings.Split(logs, "\n") {
		var l struct {
			Msg       string `json:"msg"`
			RequestID string `json:"request_id"`
			Status    int    `json:"status"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "request" && l.RequestID == id && l.Status == status {
			return true
		}
	}
	return false
}
