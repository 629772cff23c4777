package xfcc_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/trustchain/trustchain/adapters/xfcc"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   []xfcc.Element
	}{
		{
			name:   "istio sidecar element",
			header: `By=spiffe://cluster.local/ns/default/sa/service-c;Hash=4f6e;Subject="";URI=spiffe://cluster.local/ns/default/sa/service-a`,
			want: []xfcc.Element{{
				By:   []string{"spiffe://cluster.local/ns/default/sa/service-c"},
				Hash: "4f6e",
				URI:  []string{"spiffe://cluster.local/ns/default/sa/service-a"},
			}},
		},
		{
			name:   "istio ambient waypoint element: By and URI only",
			header: `By=spiffe://cluster.local/ns/default/sa/waypoint;URI=spiffe://cluster.local/ns/default/sa/service-a`,
			want: []xfcc.Element{{
				By:  []string{"spiffe://cluster.local/ns/default/sa/waypoint"},
				URI: []string{"spiffe://cluster.local/ns/default/sa/service-a"},
			}},
		},
		{
			name:   "envoy docs example with quoted subject holding separators",
			header: `By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com`,
			want: []xfcc.Element{{
				By:      []string{"http://frontend.lyft.com"},
				Hash:    "468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688",
				Subject: "/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client",
				URI:     []string{"http://testclient.lyft.com"},
			}},
		},
		{
			name:   "two elements, several DNS and URI",
			header: `By=spiffe://a/x;URI=spiffe://a/1;DNS=one.example;DNS=two.example,By=spiffe://a/y;URI=spiffe://a/2;URI=spiffe://a/3`,
			want: []xfcc.Element{
				{By: []string{"spiffe://a/x"}, URI: []string{"spiffe://a/1"}, DNS: []string{"one.example", "two.example"}},
				{By: []string{"spiffe://a/y"}, URI: []string{"spiffe://a/2", "spiffe://a/3"}},
			},
		},
		{
			name:   "quoted value with comma, semicolon, equals and escaped quote",
			header: `Subject="CN=a\"b,O=c;d=e";URI=spiffe://a/1`,
			want:   []xfcc.Element{{Subject: `CN=a"b,O=c;d=e`, URI: []string{"spiffe://a/1"}}},
		},
		{
			name:   "keys are case-insensitive",
			header: `by=spiffe://a/x;HASH=ab;uRi=spiffe://a/1;dns=d;CERT=c;chain=ch`,
			want: []xfcc.Element{{
				By: []string{"spiffe://a/x"}, Hash: "ab", URI: []string{"spiffe://a/1"},
				DNS: []string{"d"}, Cert: "c", Chain: "ch",
			}},
		},
		{
			name:   "url-encoded cert stays encoded",
			header: `Hash=ab;Cert="-----BEGIN%20CERTIFICATE-----%0AMIIB%3D%3D%0A-----END%20CERTIFICATE-----%0A";URI=spiffe://a/1`,
			want: []xfcc.Element{{
				Hash: "ab",
				Cert: "-----BEGIN%20CERTIFICATE-----%0AMIIB%3D%3D%0A-----END%20CERTIFICATE-----%0A",
				URI:  []string{"spiffe://a/1"},
			}},
		},
		{
			name:   "empty URI means no URI SAN",
			header: `By=spiffe://a/x;Hash=ab;URI=`,
			want:   []xfcc.Element{{By: []string{"spiffe://a/x"}, Hash: "ab"}},
		},
		{
			name:   "whitespace from joined header lines",
			header: `URI=spiffe://a/1 , URI=spiffe://a/2`,
			want:   []xfcc.Element{{URI: []string{"spiffe://a/1"}}, {URI: []string{"spiffe://a/2"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := xfcc.Parse(tt.header)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.header, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q)\n got %#v\nwant %#v", tt.header, got, tt.want)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	tests := []struct {
		name   string
		header string
	}{
		{"empty", ""},
		{"blank", "   "},
		{"no equals", "URI"},
		{"empty key", "=spiffe://a/1"},
		{"unknown key", "Foo=bar"},
		{"unterminated quote", `Subject="CN=a;URI=spiffe://a/1`},
		{"dangling escape", `Subject="CN=a\`},
		{"quote inside bare value", `URI=spiffe://a/"1"`},
		{"text after quoted value", `Subject="a"b;URI=spiffe://a/1`},
		{"empty element", "URI=spiffe://a/1,,URI=spiffe://a/2"},
		{"trailing comma", "URI=spiffe://a/1,"},
		{"trailing semicolon", "URI=spiffe://a/1;"},
		{"leading comma", ",URI=spiffe://a/1"},
		{"repeated hash", "Hash=a;Hash=b"},
		{"repeated subject", `Subject="a";Subject="b"`},
		{"quote in key", `"URI"=spiffe://a/1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := xfcc.Parse(tt.header)
			if !errors.Is(err, xfcc.ErrMalformed) {
				t.Fatalf("Parse(%q) = %#v, %v; want ErrMalformed", tt.header, got, err)
			}
		})
	}
}

// FuzzParse checks that no input panics and that whatever parses is a
// non-empty list, since callers index the last element.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`By=spiffe://cluster.local/ns/default/sa/service-c;Hash=4f6e;Subject="";URI=spiffe://cluster.local/ns/default/sa/service-a`,
		`By=spiffe://cluster.local/ns/default/sa/waypoint;URI=spiffe://cluster.local/ns/default/sa/service-a`,
		`Subject="CN=a\"b,O=c;d=e";URI=spiffe://a/1,URI=spiffe://a/2;DNS=x;DNS=y`,
		`Subject="unterminated`,
		`URI=`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		elems, err := xfcc.Parse(header)
		if err != nil {
			if !errors.Is(err, xfcc.ErrMalformed) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrMalformed", header, err)
			}
			return
		}
		if len(elems) == 0 {
			t.Fatalf("Parse(%q) returned no elements and no error", header)
		}
	})
}
