package domain

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MoneyScale is the number of decimal places a price carries. The store keeps
// prices as DECIMAL(12,2), so two places is the contract end to end.
const MoneyScale = 2

const centsPerUnit = 100

// maxCents bounds a price to what DECIMAL(12,2) can hold, so a value that
// parses here can always be written back to the store.
const maxCents = 999_999_999_999

// Money is an exact, non-negative amount in minor units (cents). It never
// passes through float64, so 19.99 stays 19.99 on every hop.
type Money struct {
	cents int64
}

// NewMoneyFromCents returns the amount of the given number of cents.
func NewMoneyFromCents(cents int64) (Money, error) {
	if cents < 0 {
		return Money{}, fmt.Errorf("%w: price %d cents is negative", ErrInvalidProduct, cents)
	}
	if cents > maxCents {
		return Money{}, fmt.Errorf("%w: price %d cents is too large", ErrInvalidProduct, cents)
	}
	return Money{cents: cents}, nil
}

// ParseMoney reads a plain decimal such as "1000", "19.99" or "1000.00", the
// form MySQL returns for DECIMAL columns and JSON uses for numbers. Exponents,
// signs, and more than MoneyScale decimal places are refused rather than
// rounded: silently changing a price is worse than failing.
func ParseMoney(s string) (Money, error) {
	whole, frac, hasPoint := strings.Cut(s, ".")
	if whole == "" || !allDigits(whole) || (hasPoint && (frac == "" || !allDigits(frac))) {
		return Money{}, fmt.Errorf("%w: price %q is not a plain decimal", ErrInvalidProduct, s)
	}
	if len(whole) > 1 && whole[0] == '0' {
		return Money{}, fmt.Errorf("%w: price %q has a leading zero", ErrInvalidProduct, s)
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > MoneyScale {
		return Money{}, fmt.Errorf("%w: price %q has more than %d decimal places", ErrInvalidProduct, s, MoneyScale)
	}
	units, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || units > math.MaxInt64/centsPerUnit {
		return Money{}, fmt.Errorf("%w: price %q is too large", ErrInvalidProduct, s)
	}
	cents := units * centsPerUnit
	if frac != "" {
		f, _ := strconv.ParseInt(frac+strings.Repeat("0", MoneyScale-len(frac)), 10, 64)
		cents += f
	}
	return NewMoneyFromCents(cents)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Cents returns the amount in minor units.
func (m Money) Cents() int64 { return m.cents }

// String formats the amount in its shortest exact form: 1000, 19.99, 19.5.
// It is also the amount's JSON number.
func (m Money) String() string { return string(m.Append(nil)) }

// Append appends the amount's shortest exact form to dst, without
// allocating when dst has room: the wire encoders call it per product.
func (m Money) Append(dst []byte) []byte {
	units, cents := m.cents/centsPerUnit, m.cents%centsPerUnit
	dst = strconv.AppendInt(dst, units, 10)
	switch {
	case cents == 0:
	case cents%10 == 0:
		dst = append(dst, '.', byte('0'+cents/10))
	default:
		dst = append(dst, '.', byte('0'+cents/10), byte('0'+cents%10))
	}
	return dst
}

// Decimal formats the amount with exactly MoneyScale places, as a DECIMAL
// column expects it.
func (m Money) Decimal() string {
	return fmt.Sprintf("%d.%02d", m.cents/centsPerUnit, m.cents%centsPerUnit)
}
