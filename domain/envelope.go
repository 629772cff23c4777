package domain

import (
	"encoding/json"
	"time"
)

// metadataPrefix is the fixed text the gateway puts before the timestamp.
const metadataPrefix = "request processed at "

// Envelope is the gateway's answer: the products plus when A processed the
// request.
type Envelope struct {
	products    []Product
	processedAt time.Time
}

// NewEnvelope wraps products processed at the given instant.
func NewEnvelope(products []Product, processedAt time.Time) Envelope {
	return Envelope{products: products, processedAt: processedAt}
}

// Products returns the wrapped products.
func (e Envelope) Products() []Product { return e.products }

// Metadata is the serviceA_metadata text: RFC 3339 in UTC, to the second.
func (e Envelope) Metadata() string {
	return metadataPrefix + e.processedAt.UTC().Format(time.RFC3339)
}

// MarshalJSON writes {"products":[...],"serviceA_metadata":"..."}; an empty
// catalogue is [] and never null.
func (e Envelope) MarshalJSON() ([]byte, error) {
	products := e.products
	if products == nil {
		products = []Product{}
	}
	return json.Marshal(struct {
		Products []Product `json:"products"`
		Metadata string    `json:"serviceA_metadata"`
	}{products, e.Metadata()})
}
