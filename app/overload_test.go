package app_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/httpapi/wire"
	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/domain"
)

// TestOverloadedStorePassesUpAsIs: B has room for one request and it is
// taken; the next request is refused by B with 503 overloaded, which C and
// A pass on with its Retry-After, each calling the hop below once (no hop
// retries). Meanwhile every hop's /readyz stays 200.
func TestOverloadedStorePassesUpAsIs(t *testing.T) {
	src := newBlockingSource()
	c := startChain(t, chainOptions{peerAuth: app.PeerAuthOff, source: src, configure: func(role domain.Role, cfg *app.Config) {
		if role == roleB {
			cfg.MaxInflight = 1
			cfg.QueryTimeout = 2 * time.Second
		}
	}})
	token := c.token(nil)
	held := make(chan int, 1)
	go func() {
		status, _, _ := get(t, nil, c.url(roleA)+"/products", token, nil)
		held <- status
	}()
	<-src.entered

	const id = "overload-1"
	start := time.Now()
	status, header, body := get(t, nil, c.url(roleA)+"/products?limit=1000", token, http.Header{wire.HeaderRequestID: {id}})
	if status != 503 || !strings.Contains(body, `"error":"overloaded"`) || !strings.Contains(body, `"request_id":"`+id+`"`) {
		t.Fatalf("A answered %d %s, want 503 overloaded", status, body)
	}
	if got := header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After at A = %q, want B's 1", got)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the refusal took %v", took)
	}
	for _, role := range []domain.Role{roleA, roleC, roleB} {
		lines := 0
		for _, line := range strings.Split(c.logs[role].String(), "\n") {
			if strings.Contains(line, `"request_id":"`+id+`"`) && strings.Contains(line, `"msg":"request"`) {
				lines++
				if !strings.Contains(line, `"status":503`) {
					t.Errorf("%s answered the shed request with: %s", role, line)
				}
			}
		}
		if lines != 1 {
			t.Errorf("%s served the shed request %d times, want once (no retries)", role, lines)
		}
		adminURL := "http://" + c.svc(role).AdminAddr() + wire.ReadyzPath
		if status, _, body := get(t, nil, adminURL, "", nil); status != 200 {
			t.Errorf("%s /readyz while B sheds = %d %s", role, status, body)
		}
	}
	if status := <-held; status != 504 {
		t.Errorf("the held request ended %d, want B's timeout as 504", status)
	}
}
