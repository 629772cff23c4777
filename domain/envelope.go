package domain

import "time"

// metadataPrefix is the fixed text the gateway puts before the timestamp.
const metadataPrefix = "request processed at "

// Envelope is what the gateway adds to an answer: when it processed the
// request. The wire format puts it beside the products as serviceA_metadata.
type Envelope struct {
	processedAt time.Time
}

// NewEnvelope records that the gateway processed a request at the instant.
func NewEnvelope(processedAt time.Time) Envelope {
	return Envelope{processedAt: processedAt}
}

// Metadata is the serviceA_metadata text: RFC 3339 in UTC, to the second.
func (e Envelope) Metadata() string {
	return metadataPrefix + e.processedAt.UTC().Format(time.RFC3339)
}
