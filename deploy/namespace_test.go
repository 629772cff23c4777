package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The namespace line of the site component: the one place it is set.
var namespaceLine = regexp.MustCompile(`(?m)^namespace: (\S+)$`)

func readSiteNamespace(tb testing.TB, root string) (ns, file string) {
	tb.Helper()
	file = filepath.Join(root, "components", "site", "kustomization.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	m := namespaceLine.FindAllStringSubmatch(string(data), -1)
	if len(m) != 1 {
		tb.Fatalf("%s: want exactly one %q line, found %d", file, "namespace: <ns>", len(m))
	}
	return m[0][1], file
}

// nsMentions are the forms a namespace takes in the rendering: an object's
// namespace, a SPIFFE principal, a cluster DNS name (service hosts, upstream
// URLs, the dev DSN).
func nsMentions(ns string) []string {
	return []string{"namespace: " + ns + "\n", "/ns/" + ns + "/", "." + ns + ".svc.cluster.local"}
}

// Changing the namespace on its one line moves every principal, host and
// URL that contains it, in every overlay, and leaves none behind.
func TestNamespaceChangesInOnePlace(t *testing.T) {
	oldNS, _ := readSiteNamespace(t, ".")
	const newNS = "trustchain-moved"
	root := copyDeployTree(t)
	_, file := readSiteNamespace(t, root)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(namespaceLine.ReplaceAllString(string(data), "namespace: "+newNS)), 0o644); err != nil {
		t.Fatal(err)
	}

	before := map[string]*bundle{}
	for _, b := range renderAll(t, ".") {
		before[b.overlay] = b
	}
	for _, moved := range renderAll(t, root) {
		t.Run(moved.overlay, func(t *testing.T) {
			orig := before[moved.overlay]
			for i, oldForm := range nsMentions(oldNS) {
				newForm := nsMentions(newNS)[i]
				n := strings.Count(orig.yaml, oldForm)
				if n == 0 {
					t.Errorf("the original rendering never mentions %q: nothing to move", oldForm)
				}
				if left := strings.Count(moved.yaml, oldForm); left != 0 {
					t.Errorf("%d mentions of %q left after moving to %s", left, oldForm, newNS)
				}
				if got := strings.Count(moved.yaml, newForm); got != n {
					t.Errorf("%d mentions of %q, want %d (one for each %q before)", got, newForm, n, oldForm)
				}
			}
			// The typed view agrees: the policies, hosts and URLs checked by
			// the other tests hold in the new namespace.
			if got := sortedKeys(moved.namespaces); len(got) != 1 || got[0] != newNS {
				t.Errorf("namespaces %v, want [%s]", got, newNS)
			}
			for name := range moved.namespaceObjects {
				if name != newNS {
					t.Errorf("Namespace object %s, want %s", name, newNS)
				}
			}
			for _, p := range meshProblems(moved, limits(t), wantEdgesFor(moved, newNS)) {
				t.Error(p)
			}
			for name, d := range moved.deployments {
				c := container(t, d.Spec.Template.Spec, mainContainer)
				if up, ok := env(c, "UPSTREAM_URL"); ok && !strings.Contains(up.Value, "."+newNS+".svc.cluster.local:") {
					t.Errorf("%s UPSTREAM_URL %q not in %s", name, up.Value, newNS)
				}
			}
			for name, dr := range moved.destinationRules {
				if !strings.HasSuffix(dr.Spec.GetHost(), "."+newNS+".svc.cluster.local") {
					t.Errorf("DestinationRule %s host %q not in %s", name, dr.Spec.GetHost(), newNS)
				}
			}
			if s, ok := moved.secrets[mysqlSecret]; ok && !strings.Contains(s.StringData["dsn"], "mysql."+newNS+".svc.cluster.local:") {
				t.Errorf("dev DSN host not in %s", newNS)
			}
		})
	}
}
