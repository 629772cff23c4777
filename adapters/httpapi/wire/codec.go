package wire

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/trustchain/trustchain/domain"
)

// The wire format, shared by every hop:
//
//	product  {"id":1,"name":"Laptop","price":1000}
//	page     [product, ...]                                   (B and C)
//	envelope {"products":[...],"serviceA_metadata":"..."}     (A, a page)
//	         {"product":{...},"serviceA_metadata":"..."}      (A, one product)
//	error    {"error":"code","message":"...","request_id":"..."}
//
// Encoding appends to a byte slice with no reflection; decoding reads tokens
// with jsontext (the encoding/json/v2 syntax layer), strictly: RFC 8259
// syntax, no duplicate or unknown fields, nothing after the value.

// maxProductBytes bounds one product on the wire, escapes included: the id
// (19 digits), the name (MaxNameLength runes, each at worst a 12-byte
// surrogate-pair escape), the price (at most 16 characters) and the field
// names and punctuation around them. Body caps are derived from it, so they
// follow the page size instead of being a guess.
const maxProductBytes = 19 + 2 + 12*domain.MaxNameLength + 16 + 64

// PageBodyLimit is the most bytes a page of limit products may take.
func PageBodyLimit(limit int) int64 {
	return int64(limit)*(maxProductBytes+1) + 64
}

// ProductBodyLimit is the most bytes one product answer may take.
const ProductBodyLimit = maxProductBytes + 64

// AppendProduct appends p as {"id":…,"name":…,"price":…}.
func AppendProduct(dst []byte, p domain.Product) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, p.ID(), 10)
	dst = append(dst, `,"name":`...)
	// NewProduct guarantees valid UTF-8, the only thing AppendQuote refuses.
	dst, _ = jsontext.AppendQuote(dst, p.Name())
	dst = append(dst, `,"price":`...)
	dst = p.Price().Append(dst)
	return append(dst, '}')
}

// AppendProducts appends a page's products as a JSON array, [] when empty.
func AppendProducts(dst []byte, products []domain.Product) []byte {
	dst = append(dst, '[')
	for i, p := range products {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendProduct(dst, p)
	}
	return append(dst, ']')
}

// AppendPageEnvelope writes the gateway's answer for a page: its products
// beside the envelope's metadata.
func AppendPageEnvelope(dst []byte, page domain.Page, env domain.Envelope) []byte {
	dst = append(dst, `{"products":`...)
	dst = AppendProducts(dst, page.Products())
	return appendMetadata(dst, env)
}

// AppendProductEnvelope writes the gateway's answer for one product.
func AppendProductEnvelope(dst []byte, p domain.Product, env domain.Envelope) []byte {
	dst = append(dst, `{"product":`...)
	dst = AppendProduct(dst, p)
	return appendMetadata(dst, env)
}

func appendMetadata(dst []byte, env domain.Envelope) []byte {
	dst = append(dst, `,"serviceA_metadata":`...)
	dst, _ = jsontext.AppendQuote(dst, env.Metadata())
	return append(dst, '}')
}

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Code, Message, RequestID string
}

// AppendError appends e; request_id is left out when empty.
func AppendError(dst []byte, e ErrorBody) []byte {
	dst = append(dst, `{"error":`...)
	dst, _ = jsontext.AppendQuote(dst, e.Code)
	dst = append(dst, `,"message":`...)
	dst, _ = jsontext.AppendQuote(dst, e.Message)
	if e.RequestID != "" {
		dst = append(dst, `,"request_id":`...)
		dst, _ = jsontext.AppendQuote(dst, e.RequestID)
	}
	return append(dst, '}')
}

// decoders recycles jsontext decoders and their read buffers.
var decoders = sync.Pool{New: func() any { return new(jsontext.Decoder) }}

func getDecoder(r io.Reader) *jsontext.Decoder {
	d := decoders.Get().(*jsontext.Decoder)
	d.Reset(r)
	return d
}

// putDecoder recycles d. Its buffer may be large after a big page: only
// modest ones are kept.
func putDecoder(d *jsontext.Decoder) {
	d.Reset(emptyReader{})
	decoders.Put(d)
}

// emptyReader parks a pooled decoder without keeping the last body alive.
type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, io.EOF }

var errTrailingData = errors.New("trailing data after the JSON value")

// DecodeProducts reads a JSON array of at most limit products and nothing
// after it.
func DecodeProducts(r io.Reader, limit int) ([]domain.Product, error) {
	dec := getDecoder(r)
	defer putDecoder(dec)
	if err := expectDelim(dec, '['); err != nil {
		return nil, err
	}
	// Grow with the answer rather than reserve the whole limit: most pages
	// are shorter than the limit, and every hop would pay for the gap.
	products := make([]domain.Product, 0, min(limit, 16))
	for dec.PeekKind() != ']' {
		if len(products) == limit {
			return nil, fmt.Errorf("more than the %d products asked for", limit)
		}
		p, err := readProduct(dec)
		if err != nil {
			return nil, fmt.Errorf("product %d: %w", len(products), err)
		}
		products = append(products, p)
	}
	if err := expectDelim(dec, ']'); err != nil {
		return nil, err
	}
	return products, expectEnd(dec)
}

// DecodeProduct reads a single product object and nothing after it.
func DecodeProduct(r io.Reader) (domain.Product, error) {
	dec := getDecoder(r)
	defer putDecoder(dec)
	p, err := readProduct(dec)
	if err != nil {
		return domain.Product{}, err
	}
	return p, expectEnd(dec)
}

// readProduct reads {"id":…,"name":…,"price":…}: each field exactly once,
// no other field, and the values through the domain's own checks.
func readProduct(dec *jsontext.Decoder) (domain.Product, error) {
	if err := expectDelim(dec, '{'); err != nil {
		return domain.Product{}, err
	}
	var (
		id               int64
		name             string
		price            domain.Money
		haveID, haveName bool
		havePrice        bool
	)
	for dec.PeekKind() != '}' {
		// Duplicate names are a syntax error for the decoder, so each
		// case below runs at most once per object. The field's bytes are
		// only valid until the next read, so the switch comes first.
		field, err := dec.ReadValue()
		if err != nil {
			return domain.Product{}, err
		}
		switch string(field) {
		case `"id"`:
			id, err = readID(dec)
			haveID = true
		case `"name"`:
			name, err = readName(dec)
			haveName = true
		case `"price"`:
			price, err = readPrice(dec)
			havePrice = true
		default:
			err = fmt.Errorf("unknown field %s", Truncate(string(field), 32))
		}
		if err != nil {
			return domain.Product{}, err
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return domain.Product{}, err
	}
	if !haveID || !haveName || !havePrice {
		return domain.Product{}, errors.New("a product needs id, name and price")
	}
	return domain.NewProduct(id, name, price)
}

func readID(dec *jsontext.Decoder) (int64, error) {
	v, err := dec.ReadValue()
	if err != nil {
		return 0, err
	}
	id, ok := parseID(v)
	if !ok {
		return 0, fmt.Errorf("id %s is not a positive integer", Truncate(string(v), 32))
	}
	return id, nil
}

func readName(dec *jsontext.Decoder) (string, error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return "", err
	}
	if tok.Kind() != '"' {
		return "", fmt.Errorf("name is a %v, not a string", tok.Kind())
	}
	return tok.String(), nil
}

func readPrice(dec *jsontext.Decoder) (domain.Money, error) {
	v, err := dec.ReadValue()
	if err != nil {
		return domain.Money{}, err
	}
	if v.Kind() != '0' {
		return domain.Money{}, fmt.Errorf("price is a %v, not a number", v.Kind())
	}
	return domain.ParseMoney(string(v))
}

// parseID reads a JSON number that is a positive decimal integer: no sign,
// fraction or exponent.
func parseID(v jsontext.Value) (int64, bool) {
	if len(v) == 0 || len(v) > 19 || v[0] == '0' {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, n > 0
}

func expectDelim(dec *jsontext.Decoder, want jsontext.Kind) error {
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	if tok.Kind() != want {
		return fmt.Errorf("found %v where %v was expected", tok.Kind(), want)
	}
	return nil
}

// expectEnd checks that nothing but whitespace follows the value.
func expectEnd(dec *jsontext.Decoder) error {
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return errTrailingData
	}
	return nil
}

// DecodeError reads an error body {"error","message"[,"request_id"]}.
func DecodeError(r io.Reader) (ErrorBody, error) {
	dec := getDecoder(r)
	defer putDecoder(dec)
	var e ErrorBody
	if err := expectDelim(dec, '{'); err != nil {
		return e, err
	}
	for dec.PeekKind() != '}' {
		// The field's bytes are only valid until the next read: pick the
		// destination first.
		field, err := dec.ReadValue()
		if err != nil {
			return e, err
		}
		var dst *string
		switch string(field) {
		case `"error"`:
			dst = &e.Code
		case `"message"`:
			dst = &e.Message
		case `"request_id"`:
			dst = &e.RequestID
		default:
			return e, fmt.Errorf("unknown field %s", Truncate(string(field), 32))
		}
		tok, err := dec.ReadToken()
		if err != nil {
			return e, err
		}
		if tok.Kind() != '"' {
			return e, errors.New("error fields are strings")
		}
		*dst = tok.String()
	}
	if err := expectDelim(dec, '}'); err != nil {
		return e, err
	}
	if e.Code == "" || e.Message == "" {
		return e, errors.New("an error body needs error and message")
	}
	return e, expectEnd(dec)
}

// Truncate bounds text taken from the network before it reaches a log or
// an error, keeping it valid UTF-8.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
