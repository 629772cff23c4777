package page

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

//go:embed templates/page.html
var templateFS embed.FS

// pageTemplate is parsed on first use: the three API roles link this
// package but never render the page, and a parsed template lives on the
// heap that every garbage collection marks.
var pageTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.ParseFS(templateFS, "templates/page.html"))
})

// pageView is everything the template sees. It has no field for a token:
// what is not here cannot reach the browser.
type pageView struct {
	Notice      string
	LoginHint   string
	Shortcuts   []string
	Subject     string // empty when logged out
	Claims      []claimRow
	HasExpired  bool
	HasDPoP     bool
	PeerAuthOff bool
	Result      *resultView
	Chain       []box // the picture: the result's, or what each hop checks
}

type claimRow struct{ Name, Value string }

type resultView struct {
	*callResult
	StatusText string
	OK         bool
}

func (p *Page) render(w http.ResponseWriter, r *http.Request, status int, sess session, notice string) {
	view := pageView{
		Notice: notice, LoginHint: p.cfg.LoginHint, Shortcuts: p.cfg.Shortcuts,
		HasExpired: p.cfg.Expired != nil, PeerAuthOff: p.cfg.PeerAuthOff, HasDPoP: p.cfg.DPoP != nil,
	}
	if sess.user != nil {
		view.Subject = sess.user.sub
		view.Claims = claimRows(sess.user.claims, p.cfg.Now())
	}
	var hops []HopDecision
	if res := sess.result; res != nil {
		rv := &resultView{callResult: res, OK: res.Status >= 200 && res.Status < 300}
		if res.Status != 0 {
			rv.StatusText = fmt.Sprintf("%d %s", res.Status, http.StatusText(res.Status))
		}
		if p.cfg.Decisions != nil && res.RequestID != "" {
			hops = p.cfg.Decisions.Decisions(r.Context(), res.RequestID)
		}
		view.Result = rv
	}
	view.Chain = p.picture(sess.result, hops)
	var buf bytes.Buffer
	if err := pageTemplate().Execute(&buf, view); err != nil {
		http.Error(w, "render the page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", contentSecurityPolicy+" "+p.issuerOrigin)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// contentSecurityPolicy allows no script at all, styles only inline, and
// images (the favicon) only from the page. form-action ends with the
// issuer's origin, added per page: Chromium applies it to the redirect
// that follows the Log in form.
const contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// claimOrder puts the claims the chain checks first.
var claimOrder = []string{"sub", "aud", "scope", "permissions", "azp", "iss", "iat", "exp"}

var timeClaims = []string{"iat", "exp", "nbf", "auth_time"}

func claimRows(claims map[string]any, now time.Time) []claimRow {
	names := make([]string, 0, len(claims))
	for k := range claims {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int {
		ia, ib := slices.Index(claimOrder, a), slices.Index(claimOrder, b)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return strings.Compare(a, b)
	})
	rows := make([]claimRow, 0, len(names))
	for _, name := range names {
		rows = append(rows, claimRow{Name: name, Value: claimValue(name, claims[name], now)})
	}
	return rows
}

func claimValue(name string, v any, now time.Time) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		if slices.Contains(timeClaims, name) {
			t := time.Unix(int64(v), 0).UTC()
			return t.Format(time.RFC3339) + " (" + relative(t, now) + ")"
		}
	case []any:
		if len(v) == 0 {
			return "(none)"
		}
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = claimValue("", e, now)
		}
		return strings.Join(parts, ", ")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func relative(t, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	if d >= 0 {
		return "in " + d.String()
	}
	return (-d).String() + " ago"
}

// favicon is the chain as three linked dots, drawn inline so the page
// loads nothing from elsewhere.
const favicon = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">` +
	`<path d="M6 16h20" stroke="#1a6b1a" stroke-width="3"/>` +
	`<circle cx="6" cy="16" r="5" fill="#1a6b1a"/><circle cx="16" cy="16" r="5" fill="#2d8a2d"/><circle cx="26" cy="16" r="5" fill="#1a6b1a"/></svg>`

func serveFavicon(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, _ = io.WriteString(w, favicon)
}
