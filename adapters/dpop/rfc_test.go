package dpop_test

import (
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/dpop"
)

// RFC 9449's own examples: the proof of §4.1 (made by the RFC's authors,
// not by go-jose), whose key is the one the token of §6.1 is bound to, and
// the access token hash of §7.1.
const (
	rfcProof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6Ik" +
		"VDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCR" +
		"nMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JE" +
		"QSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIj" +
		"oiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwia" +
		"WF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4" +
		"PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
	rfcJKT   = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	rfcToken = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
	rfcAth   = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
)

func TestRFC9449Examples(t *testing.T) {
	v := newVerifier(t, dpop.Config{})
	at := time.Unix(1562262616, 0).Add(10 * time.Second)
	// At a token endpoint: no access token, so no ath.
	p, err := v.Verify(rfcProof, "POST", "https://server.example.com/token", "", at)
	if err != nil {
		t.Fatalf("the RFC's proof: %v", err)
	}
	if p.JKT != rfcJKT {
		t.Errorf("thumbprint %q, the RFC's cnf.jkt is %q", p.JKT, rfcJKT)
	}
	if got := dpop.AccessTokenHash(rfcToken); got != rfcAth {
		t.Errorf("ath of the RFC's token = %q, want %q", got, rfcAth)
	}
	// And it is refused anywhere else.
	if _, err := newVerifier(t, dpop.Config{}).Verify(rfcProof, "GET", "https://server.example.com/token", "", at); err == nil {
		t.Error("the RFC's POST proof passed for GET")
	}
}
