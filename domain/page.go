package domain

import "fmt"

// MaxPageLimit is the most products one page may hold, whatever a hop is
// configured with: it bounds what the store reads and what every hop
// buffers for one request.
const MaxPageLimit = 10_000

// PageRequest asks for the products whose id is after a cursor, in id
// order, at most Limit of them: keyset pagination, so a deep page costs the
// same as the first.
type PageRequest struct {
	after int64
	limit int
}

// NewPageRequest validates a page request. after is the last id the caller
// has seen (0 for the first page).
func NewPageRequest(after int64, limit int) (PageRequest, error) {
	if after < 0 {
		return PageRequest{}, fmt.Errorf("%w: after %d is negative", ErrInvalidRequest, after)
	}
	if limit < 1 || limit > MaxPageLimit {
		return PageRequest{}, fmt.Errorf("%w: limit %d is not between 1 and %d", ErrInvalidRequest, limit, MaxPageLimit)
	}
	return PageRequest{after: after, limit: limit}, nil
}

// After is the cursor: only products with a larger id are in the page.
func (r PageRequest) After() int64 { return r.after }

// Limit is the most products the page may hold.
func (r PageRequest) Limit() int { return r.limit }

// Page is one answer to a PageRequest.
type Page struct {
	request  PageRequest
	products []Product
	more     bool
}

// NewPage checks that products answer req: at most req.Limit() of them,
// ids strictly increasing and after the cursor, and a page that says more
// products follow is full. It keeps products; the caller must not change
// the slice afterwards.
func NewPage(req PageRequest, products []Product, more bool) (Page, error) {
	if req.limit == 0 {
		return Page{}, fmt.Errorf("%w: no page request", ErrInvalidPage)
	}
	if len(products) > req.limit {
		return Page{}, fmt.Errorf("%w: %d products for a limit of %d", ErrInvalidPage, len(products), req.limit)
	}
	prev := req.after
	for _, p := range products {
		if p.id <= prev {
			return Page{}, fmt.Errorf("%w: id %d does not follow %d", ErrInvalidPage, p.id, prev)
		}
		prev = p.id
	}
	if more && len(products) < req.limit {
		return Page{}, fmt.Errorf("%w: %d of %d products, yet more are said to follow", ErrInvalidPage, len(products), req.limit)
	}
	if products == nil {
		products = []Product{}
	}
	return Page{request: req, products: products, more: more}, nil
}

// Request is the request the page answers.
func (p Page) Request() PageRequest { return p.request }

// Products returns the page's products in id order; an empty page is an
// empty, non-nil slice. The slice is the page's own: read it, do not
// change it.
func (p Page) Products() []Product { return p.products }

// Next returns the request for the following page, if more products follow.
func (p Page) Next() (PageRequest, bool) {
	if !p.more {
		return PageRequest{}, false
	}
	return PageRequest{after: p.products[len(p.products)-1].id, limit: p.request.limit}, true
}
