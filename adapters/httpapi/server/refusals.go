package server

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/trustchain/trustchain/adapters/httpapi/wire"
	"github.com/trustchain/trustchain/domain"
)

// net/http answers a request it cannot parse (a malformed request line or
// header, headers over the limit, an unknown transfer coding, an HTTP
// version it does not speak) itself, before any handler runs, by writing a
// fixed plain-text answer straight to the connection. Those answers would
// carry no X-Request-Id and leave no log line. On a plaintext listener
// (behind the mesh's proxy, or with peer authentication off) each
// connection is wrapped so that such an answer is recognised as it is
// written and replaced by this API's own: the same status, the JSON error
// shape, a new request id, and an access-log line. A TLS listener cannot
// be wrapped this way: net/http finds the client's certificate only on a
// *tls.Conn, so there those answers stay net/http's (the README says so).

// netHTTPErrorHeaders is what net/http writes after the status line of its
// own refusals, and only there: a handler's answer always has a Date.
const netHTTPErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// refusalListener wraps each accepted connection in a refusalConn.
type refusalListener struct {
	net.Listener
	server  string
	log     *slog.Logger
	maxHead int // the limit on a request's head, for the 431's message
}

func (l refusalListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &refusalConn{Conn: c, listener: l}, nil
}

// refusalConn replaces net/http's own refusals written to it.
type refusalConn struct {
	net.Conn
	listener refusalListener
}

func (c *refusalConn) Write(b []byte) (int, error) {
	status, ok := netHTTPRefusal(b)
	if !ok {
		return c.Conn.Write(b)
	}
	id := uuid.NewString()
	code, message := refusalText(status, c.listener.maxHead)
	// Logged before the answer goes, so the line is there once the client
	// has it.
	line, _, _ := bytes.Cut(b, []byte("\r\n"))
	c.listener.log.LogAttrs(context.Background(), slog.LevelWarn, "request",
		slog.String("server", c.listener.server),
		slog.String("method", ""),
		slog.String("path", ""),
		slog.String("route", ""),
		slog.Int("status", status),
		slog.Duration("duration", 0),
		slog.String("request_id", id),
		slog.Group("error",
			slog.String("reason", code),
			slog.String("detail", "net/http refused the request before any handler: "+wire.Truncate(string(line[len("HTTP/1.1 "):]), maxLoggedDetail)),
		),
	)
	if _, err := c.Conn.Write(refusalAnswer(status, code, message, id)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// CloseWrite passes on the half-close net/http does after a 431, so the
// client reads the answer before the connection goes.
func (c *refusalConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// netHTTPRefusal reports whether b is one of net/http's own refusals, and
// its status: "HTTP/1.1 NNN text" followed by exactly netHTTPErrorHeaders.
func netHTTPRefusal(b []byte) (int, bool) {
	const prefix = "HTTP/1.1 "
	// Most writes are a 2xx head or a body: refused on their first bytes,
	// before the line is searched.
	if len(b) < len(prefix)+3 || !bytes.HasPrefix(b, []byte(prefix)) || (b[len(prefix)] != '4' && b[len(prefix)] != '5') {
		return 0, false
	}
	end := bytes.Index(b, []byte("\r\n"))
	if end < len(prefix)+3 || !bytes.HasPrefix(b[end:], []byte(netHTTPErrorHeaders)) {
		return 0, false
	}
	status, err := strconv.Atoi(string(b[len(prefix) : len(prefix)+3]))
	if err != nil || status < 400 || status > 599 {
		return 0, false
	}
	return status, true
}

// refusalText is the error code and message of a refusal net/http made:
// the table's for a malformed request, else the status's own name.
func refusalText(status, maxHead int) (code, message string) {
	switch status {
	case http.StatusBadRequest:
		p := wire.ProblemFor(domain.ErrInvalidRequest)
		return p.Code, p.Message
	case http.StatusRequestHeaderFieldsTooLarge:
		return "headers_too_large", "the request line and headers are over " + strconv.Itoa(maxHead) + " bytes"
	}
	text := strings.ToLower(http.StatusText(status))
	return strings.ReplaceAll(text, " ", "_"), text
}

// refusalAnswer is a whole HTTP/1.1 answer in this API's error shape,
// closing the connection as net/http's did.
func refusalAnswer(status int, code, message, id string) []byte {
	body := append(wire.AppendError(nil, wire.ErrorBody{Code: code, Message: message, RequestID: id}), '\n')
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n")
	b.WriteString("Cache-Control: no-store\r\n")
	b.WriteString("Connection: close\r\n")
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	b.WriteString("Content-Type: " + wire.ContentType + "\r\n")
	b.WriteString("Date: " + time.Now().UTC().Format(http.TimeFormat) + "\r\n")
	b.WriteString("X-Content-Type-Options: nosniff\r\n")
	b.WriteString(wire.HeaderRequestID + ": " + id + "\r\n\r\n")
	b.Write(body)
	return b.Bytes()
}
