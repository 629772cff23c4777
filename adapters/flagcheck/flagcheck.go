// Package flagcheck turns go-playground/validator failures into one
// sentence per flag, for configuration errors an operator reads: the flag's
// name (validator reports the flag tag) and what is wrong with the value,
// which is quoted unless it is a URL with credentials or a secret.
package flagcheck

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/go-playground/validator/v10"

	"github.com/trustchain/trustchain/domain"
)

// Check validates s, a struct whose fields carry flag and validate tags,
// and returns one problem per failing field: the caller's own type of a
// flag's name (without dashes) and a sentence.
func Check[P ~struct{ Flag, Message string }](v *validator.Validate, s any) ([]P, error) {
	err := v.Struct(s)
	var fieldErrs validator.ValidationErrors
	if err != nil && !errors.As(err, &fieldErrs) {
		return nil, fmt.Errorf("validate config: %w", err)
	}
	problems := make([]P, 0, len(fieldErrs))
	for _, fe := range fieldErrs {
		problems = append(problems, P{Flag: flagName(fe), Message: describe(fe)})
	}
	return problems, nil
}

func flagName(fe validator.FieldError) string {
	name := fe.Field()
	if i := strings.IndexByte(name, '['); i >= 0 { // slice elements: allow-peer[0]
		name = name[:i]
	}
	return name
}

// describe turns a validator failure into a sentence about the value. A
// value that carries credentials is never repeated.
func describe(fe validator.FieldError) string {
	value := fmt.Sprintf("%q", fe.Value())
	if u, err := url.Parse(fmt.Sprint(fe.Value())); err == nil && u.User != nil {
		value = "the URL"
	}
	if say, ok := tagSentences[fe.Tag()]; ok {
		return say(value, fe)
	}
	return fmt.Sprintf("%s is invalid (%s)", value, fe.Tag())
}

// tagSentences say what is wrong with a value (quoted, or "the URL") that
// failed a tag.
var tagSentences = map[string]func(value string, fe validator.FieldError) string{
	"required":          fixed("is required"),
	"required_if":       withFlag("is required with --%s"),
	"excluded_unless":   withFlag("is used only with --%s"),
	"no_userinfo":       fixed("must not carry a user name or password: the URL would be logged and sent in clear"),
	"excludesall":       fixed("must be a single scope"),
	"listen_addr":       valueIs("%s is not a host:port listen address"),
	"issuer_url":        valueIs("%s is not an https issuer URL (plain http is allowed only on loopback)"),
	"http_url":          valueIs("%s is not an http(s) URL"),
	"spiffe_id":         valueIs("%s is not a SPIFFE ID (spiffe://trust-domain/path)"),
	"trust_domain":      valueIs("%s is not a trust domain name"),
	"dns_rfc1035_label": valueIs("%s is not a Kubernetes name (a DNS label)"),
	"log_level":         valueIs("%s is not one of: debug, info, warn, error"),
	"secret":            fixed("must be at least 32 bytes: a random secret shared by the edge's replicas (never shown)"),
	"ratio":             valueIs("%s is not a ratio from 0 to 1"),
	"oneof": func(value string, fe validator.FieldError) string {
		return fmt.Sprintf("%s is not one of: %s", value, strings.ReplaceAll(fe.Param(), " ", ", "))
	},
	"role": func(value string, _ validator.FieldError) string {
		roles := make([]string, 0, 3)
		for _, h := range domain.Chain() {
			roles = append(roles, string(h.Role))
		}
		slices.Sort(roles)
		return fmt.Sprintf("%s is not one of: %s", value, strings.Join(roles, ", "))
	},
	"ltefield": func(_ string, fe validator.FieldError) string {
		if fe.Field() == "page-size" {
			return "must not exceed --max-page-size"
		}
		return "must not exceed --mysql-max-open-conns"
	},
	"max_page": func(_ string, fe validator.FieldError) string {
		return fmt.Sprintf("%v is more than the most any page may hold (%d)", fe.Value(), domain.MaxPageLimit)
	},
	"gt":  outOfRange,
	"gte": outOfRange,
	"lte": outOfRange,
}

// withFlag names the flag a conditional rule depends on: its field's name
// in lower case, as the flag tags spell the boolean ones (DPoP: --dpop).
func withFlag(format string) func(string, validator.FieldError) string {
	return func(_ string, fe validator.FieldError) string {
		field, _, _ := strings.Cut(fe.Param(), " ")
		return fmt.Sprintf(format, strings.ToLower(field))
	}
}

func fixed(sentence string) func(string, validator.FieldError) string {
	return func(string, validator.FieldError) string { return sentence }
}

func valueIs(format string) func(string, validator.FieldError) string {
	return func(value string, _ validator.FieldError) string { return fmt.Sprintf(format, value) }
}

func outOfRange(_ string, fe validator.FieldError) string {
	return fmt.Sprintf("%v is out of range (%s %s)", fe.Value(), fe.Tag(), fe.Param())
}
