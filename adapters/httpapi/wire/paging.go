package wire

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/trustchain/trustchain/domain"
)

// ParsePageQuery reads the ?limit=&after= query of a list request:
// defaultLimit when it names no limit, and at most maxLimit. Anything but
// decimal integers in range, or a parameter given twice, is the caller's
// mistake (domain.ErrInvalidRequest), refused at the first hop that sees
// it. Other parameters are ignored, as caches and browsers add their own.
func ParsePageQuery(rawQuery string, defaultLimit, maxLimit int) (domain.PageRequest, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return domain.PageRequest{}, badRequest("the query string is malformed")
	}
	limit, err := queryInt(q, "limit", int64(defaultLimit))
	if err != nil {
		return domain.PageRequest{}, err
	}
	if limit < 1 || limit > int64(maxLimit) {
		return domain.PageRequest{}, badRequest(fmt.Sprintf("limit must be between 1 and %d", maxLimit))
	}
	after, err := queryInt(q, "after", 0)
	if err != nil {
		return domain.PageRequest{}, err
	}
	if after < 0 {
		return domain.PageRequest{}, badRequest("after must not be negative")
	}
	req, err := domain.NewPageRequest(after, int(limit))
	if err != nil {
		return domain.PageRequest{}, badRequest(strings.TrimPrefix(err.Error(), domain.ErrInvalidRequest.Error()+": "))
	}
	return req, nil
}

// queryInt reads one optional decimal integer parameter.
func queryInt(q url.Values, name string, def int64) (int64, error) {
	values, ok := q[name]
	switch {
	case !ok:
		return def, nil
	case len(values) > 1:
		return 0, badRequest(name + " is given more than once")
	}
	n, ok := parseDecimal(values[0])
	if !ok {
		return 0, badRequest(name + " must be a decimal integer")
	}
	return n, nil
}

// requestError is a caller's mistake this hop found, with a message written
// for that caller: the one error whose text an answer repeats.
type requestError struct{ message string }

func badRequest(message string) error { return &requestError{message} }

func (e *requestError) Error() string { return domain.ErrInvalidRequest.Error() + ": " + e.message }

// Is makes errors.Is(err, domain.ErrInvalidRequest) hold.
func (e *requestError) Is(target error) bool { return target == domain.ErrInvalidRequest }

// parseDecimal accepts an optional minus sign and 1 to 19 digits, nothing
// else: no plus sign, spaces, hex or exponent. The sign is accepted here so
// that a negative value is refused for its range, with a clearer message.
func parseDecimal(s string) (int64, bool) {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || len(digits) > 19 {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// ParseProductID reads the {id} of /products/{id}: a positive decimal
// integer.
func ParseProductID(s string) (int64, error) {
	n, ok := parseDecimal(s)
	if !ok || n <= 0 {
		return 0, badRequest("a product id is a positive decimal integer")
	}
	return n, nil
}

// PageQuery is the query that asks for req, as every hop sends it on.
func PageQuery(req domain.PageRequest) string {
	b := make([]byte, 0, 48)
	b = append(b, "after="...)
	b = strconv.AppendInt(b, req.After(), 10)
	b = append(b, "&limit="...)
	b = strconv.AppendInt(b, int64(req.Limit()), 10)
	return string(b)
}

// NextLink is the RFC 8288 Link header for the page after page, or "" when
// it is the last. The target is a relative reference, so it stays right
// behind an ingress that rewrites the host.
func NextLink(page domain.Page) string {
	next, ok := page.Next()
	if !ok {
		return ""
	}
	return "<" + ProductsPath + "?" + PageQuery(next) + `>; rel="next"`
}

// ParseNextLink reads the Link header of the next hop's page: absent, or
// exactly the form NextLink writes. Anything else is a broken next hop,
// not a hint to follow; the caller also checks that the link names the
// page after the one it came with.
func ParseNextLink(values []string) (domain.PageRequest, bool, error) {
	switch len(values) {
	case 0:
		return domain.PageRequest{}, false, nil
	case 1:
	default:
		return domain.PageRequest{}, false, fmt.Errorf("%d Link headers", len(values))
	}
	bad := fmt.Errorf("the Link header %q is not a next link", Truncate(values[0], 80))
	rest, ok := strings.CutPrefix(values[0], "<"+ProductsPath+"?after=")
	if !ok {
		return domain.PageRequest{}, false, bad
	}
	target, ok := strings.CutSuffix(rest, `>; rel="next"`)
	if !ok {
		return domain.PageRequest{}, false, bad
	}
	afterText, limitText, ok := strings.Cut(target, "&limit=")
	// A hop writes both numbers unsigned: "-0" names page 0 but is not
	// what any hop sends.
	if !ok || strings.HasPrefix(afterText, "-") || strings.HasPrefix(limitText, "-") {
		return domain.PageRequest{}, false, bad
	}
	after, okAfter := parseDecimal(afterText)
	limit, okLimit := parseDecimal(limitText)
	if !okAfter || !okLimit || limit > domain.MaxPageLimit {
		return domain.PageRequest{}, false, bad
	}
	req, err := domain.NewPageRequest(after, int(limit))
	if err != nil {
		return domain.PageRequest{}, false, bad
	}
	return req, true, nil
}
