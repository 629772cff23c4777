package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoHandWrittenSignatureChecks: production code checks no signature
// with the standard library's primitives (rsa.VerifyPKCS1v15, rsa.VerifyPSS,
// ecdsa.Verify*, ed25519.Verify*). Signatures go through go-jose, go-oidc
// and the TLS stack, which parse strictly and match keys to algorithms.
func TestNoHandWrittenSignatureChecks(t *testing.T) {
	primitives := map[string]bool{"crypto/rsa": true, "crypto/ecdsa": true, "crypto/ed25519": true}
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != "." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		checked++
		names := map[string]bool{} // local names of the primitive packages
		for _, spec := range f.Imports {
			ip, _ := strconv.Unquote(spec.Path.Value)
			if primitives[ip] {
				name := path.Base(ip)
				if spec.Name != nil {
					name = spec.Name.Name
				}
				names[name] = true
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); ok && names[pkg.Name] && strings.HasPrefix(sel.Sel.Name, "Verify") {
				t.Errorf("%s: %s.%s: check signatures through go-jose or go-oidc", fset.Position(sel.Pos()), pkg.Name, sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d production files checked: the walk is broken", checked)
	}
}
