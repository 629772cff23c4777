package issuer

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"sync"
)

//go:embed templates/*.html
var templateFS embed.FS

// pages are parsed on first use: only the demo serves them, and parsed
// templates live on the heap that every garbage collection marks.
var pages = sync.OnceValue(func() *template.Template {
	return template.Must(template.ParseFS(templateFS, "templates/*.html"))
})

type formField struct{ Name, Value string }

type loginPage struct {
	Audience, Client string
	Fields           []formField // the authorize request, carried back on POST
	Name, Error      string
}

type activatePage struct {
	UserCode, Name, Error string
}

type messagePage struct{ Title, Message string }

func renderMessage(w http.ResponseWriter, status int, title, message string) {
	renderPage(w, status, "message", messagePage{Title: title, Message: message})
}

// renderPage writes a page with headers that keep it out of frames and
// caches: it holds a login form.
func renderPage(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages().ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "render page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
