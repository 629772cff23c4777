package deploy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	securityapi "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"

	"github.com/trustchain/trustchain/adapters/httpapi"
)

// edge is one allowed call: a caller's SPIFFE principal to a workload.
type edge struct{ from, to string }

func (e edge) String() string { return e.from + " -> " + e.to }

func principal(ns, serviceAccount string) string {
	return "cluster.local/ns/" + ns + "/sa/" + serviceAccount
}

// wantEdges is the whole allowed call graph: the ingress gateway calls A,
// A calls C, C calls B; in dev, B also calls its MySQL.
func wantEdges(ns string, withMySQL bool) []edge {
	want := []edge{
		{ingressGateway, "service-a"},
		{principal(ns, "service-a"), "service-c"},
		{principal(ns, "service-c"), "service-b"},
	}
	if withMySQL {
		want = append(want, edge{principal(ns, "service-b"), "mysql"})
	}
	return want
}

// policyLimits is what a rule may open, given the ports and paths the binary
// serves.
type policyLimits struct {
	apiPort, adminPort, mysqlPort string
}

func limits(tb testing.TB) policyLimits {
	return policyLimits{
		apiPort:   strconv.Itoa(int(apiPort(tb))),
		adminPort: strconv.Itoa(int(adminPort(tb))),
		mysqlPort: "3306",
	}
}

// allowGraph computes, from the AuthorizationPolicies alone, which
// principal may call which workload, and lists every way a policy opens
// more than that: a rule without callers other than the admin rule, a
// caller named by anything but an exact principal, an operation wider than
// GET /products on the API port, a JWT not required on an API call, a
// namespace-wide ALLOW, or an action other than ALLOW.
func allowGraph(policies map[string]*securityv1.AuthorizationPolicy, lim policyLimits) (edges []edge, problems []string) {
	bad := func(policy, format string, args ...any) {
		problems = append(problems, policy+": "+fmt.Sprintf(format, args...))
	}
	adminPaths := []string{httpapi.HealthzPath, httpapi.ReadyzPath, httpapi.MetricsPath}
	for _, name := range sortedKeys(policies) {
		spec := &policies[name].Spec
		if spec.GetAction() != securityapi.AuthorizationPolicy_ALLOW {
			bad(name, "action %v: only ALLOW policies are expected", spec.GetAction())
		}
		if len(spec.GetTargetRefs()) != 0 || spec.GetTargetRef() != nil {
			bad(name, "targetRef: only label selectors are expected")
		}
		sel := spec.GetSelector().GetMatchLabels()
		if len(sel) == 0 {
			if len(spec.GetRules()) != 0 {
				bad(name, "namespace-wide ALLOW with rules opens every workload")
			}
			continue // allow-nothing
		}
		workload, ok := sel["app"]
		if len(sel) != 1 || !ok {
			bad(name, "selector %v: want exactly app=<workload>", sel)
			continue
		}
		if len(spec.GetRules()) == 0 {
			continue // matches nothing
		}
		for i, rule := range spec.GetRules() {
			where := fmt.Sprintf("%s rule %d", name, i)
			if len(rule.GetWhen()) != 0 {
				bad(where, "has conditions (when) the check does not model")
			}
			if len(rule.GetTo()) == 0 {
				bad(where, "no operation: allows every port, method and path")
				continue
			}
			if len(rule.GetFrom()) == 0 {
				// The admin rule: any mesh peer, GET, admin port, admin paths.
				for _, to := range rule.GetTo() {
					op := to.GetOperation()
					if onlyFields(op, "ports", "methods", "paths") != nil ||
						!slices.Equal(op.GetPorts(), []string{lim.adminPort}) ||
						!slices.Equal(op.GetMethods(), []string{"GET"}) ||
						len(op.GetPaths()) == 0 || !subset(op.GetPaths(), adminPaths) {
						bad(where, "open to every caller but not limited to GET %v on port %s: %v", adminPaths, lim.adminPort, op)
					}
				}
				continue
			}
			for _, from := range rule.GetFrom() {
				src := from.GetSource()
				if err := onlyFields(src, "principals", "requestPrincipals"); err != nil {
					bad(where, "source %v", err)
				}
				if workload != "mysql" && !slices.Equal(src.GetRequestPrincipals(), []string{"*"}) {
					bad(where, "requestPrincipals %v: want [\"*\"] so a call without a JWT is refused", src.GetRequestPrincipals())
				}
				for _, p := range src.GetPrincipals() {
					if strings.Contains(p, "*") {
						bad(where, "wildcard principal %q", p)
					}
					edges = append(edges, edge{p, workload})
				}
			}
			for _, to := range rule.GetTo() {
				op := to.GetOperation()
				if workload == "mysql" {
					if onlyFields(op, "ports") != nil || !slices.Equal(op.GetPorts(), []string{lim.mysqlPort}) {
						bad(where, "want only port %s, got %v", lim.mysqlPort, op)
					}
					continue
				}
				if onlyFields(op, "ports", "methods", "paths") != nil ||
					!slices.Equal(op.GetPorts(), []string{lim.apiPort}) ||
					!slices.Equal(op.GetMethods(), []string{"GET"}) ||
					!slices.Equal(op.GetPaths(), []string{httpapi.ProductsPath}) {
					bad(where, "want only GET %s on port %s, got %v", httpapi.ProductsPath, lim.apiPort, op)
				}
			}
		}
	}
	return edges, problems
}

// onlyFields fails if msg sets any field but the named ones (JSON names),
// so a field added to Istio's API later is not silently ignored.
func onlyFields(msg proto.Message, allowed ...string) error {
	var extra []string
	msg.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if !slices.Contains(allowed, fd.JSONName()) {
			extra = append(extra, fd.JSONName())
		}
		return true
	})
	if len(extra) != 0 {
		return fmt.Errorf("sets %v; only %v are expected", extra, allowed)
	}
	return nil
}

func subset(got, allowed []string) bool {
	for _, g := range got {
		if !slices.Contains(allowed, g) {
			return false
		}
	}
	return true
}

// checkAllowGraph is the assertion: no problem, and exactly the wanted
// edges.
func checkAllowGraph(policies map[string]*securityv1.AuthorizationPolicy, lim policyLimits, want []edge) []string {
	edges, problems := allowGraph(policies, lim)
	got := map[edge]bool{}
	for _, e := range edges {
		got[e] = true
	}
	wanted := map[edge]bool{}
	for _, e := range want {
		wanted[e] = true
		if !got[e] {
			problems = append(problems, "missing allowed call "+e.String())
		}
	}
	for e := range got {
		if !wanted[e] {
			problems = append(problems, "unexpected allowed call "+e.String())
		}
	}
	if p, ok := policies["allow-nothing"]; !ok || len(p.Spec.GetRules()) != 0 || p.Spec.GetSelector() != nil {
		problems = append(problems, "no namespace-wide allow-nothing policy (spec: {})")
	}
	sort.Strings(problems)
	return problems
}

func TestAllowGraphIsExactlyTheChain(t *testing.T) {
	ns := siteNamespace(t, ".")
	for _, b := range renderAll(t, ".") {
		t.Run(b.overlay, func(t *testing.T) {
			_, withMySQL := b.statefulSets["mysql"]
			for _, p := range checkAllowGraph(b.authzPolicies, limits(t), wantEdges(ns, withMySQL)) {
				t.Error(p)
			}
			// Each workload has a policy of its own selecting it.
			for name, d := range b.deployments {
				if !hasPolicyFor(b.authzPolicies, d.Spec.Template.Labels) {
					t.Errorf("no ALLOW policy selects %s: the mesh would refuse all its traffic", name)
				}
			}
		})
	}
}

func hasPolicyFor(policies map[string]*securityv1.AuthorizationPolicy, labels map[string]string) bool {
	for _, p := range policies {
		if sel := p.Spec.GetSelector().GetMatchLabels(); len(sel) != 0 && selects(sel, labels) {
			return true
		}
	}
	return false
}

// Loosen the policy on purpose, one way at a time, and show the graph
// check catches each. If one of these passes, the check above can no
// longer be trusted.
func TestAllowGraphCatchesLoosening(t *testing.T) {
	ns := siteNamespace(t, ".")
	lim := limits(t)
	dev := renderOverlay(t, ".", "dev")
	want := wantEdges(ns, true)
	if p := checkAllowGraph(dev.authzPolicies, lim, want); len(p) != 0 {
		t.Fatalf("the unmodified policies must pass: %v", p)
	}
	apiRule := func(p *securityv1.AuthorizationPolicy) *securityapi.Rule { return p.Spec.Rules[0] }
	tests := []struct {
		name   string
		loosen func(map[string]*securityv1.AuthorizationPolicy)
	}{
		{"service-b may also call service-c", func(ps map[string]*securityv1.AuthorizationPolicy) {
			src := apiRule(ps["service-c"]).From[0].Source
			src.Principals = append(src.Principals, principal(ns, "service-b"))
		}},
		{"service-a may skip service-c and call service-b", func(ps map[string]*securityv1.AuthorizationPolicy) {
			src := apiRule(ps["service-b"]).From[0].Source
			src.Principals = append(src.Principals, principal(ns, "service-a"))
		}},
		{"the whole namespace may call service-b", func(ps map[string]*securityv1.AuthorizationPolicy) {
			apiRule(ps["service-b"]).From[0].Source.Namespaces = []string{ns}
		}},
		{"POST is allowed", func(ps map[string]*securityv1.AuthorizationPolicy) {
			op := apiRule(ps["service-c"]).To[0].Operation
			op.Methods = append(op.Methods, "POST")
		}},
		{"any path is allowed", func(ps map[string]*securityv1.AuthorizationPolicy) {
			apiRule(ps["service-b"]).To[0].Operation.Paths = nil
		}},
		{"no JWT needed at the edge", func(ps map[string]*securityv1.AuthorizationPolicy) {
			apiRule(ps["service-a"]).From[0].Source.RequestPrincipals = nil
		}},
		{"the admin rule also opens the API port", func(ps map[string]*securityv1.AuthorizationPolicy) {
			op := ps["service-c"].Spec.Rules[1].To[0].Operation
			op.Ports = append(op.Ports, lim.apiPort)
		}},
		{"allow-nothing allows everything", func(ps map[string]*securityv1.AuthorizationPolicy) {
			ps["allow-nothing"].Spec.Rules = []*securityapi.Rule{{}}
		}},
		{"service-a's policy is dropped", func(ps map[string]*securityv1.AuthorizationPolicy) {
			delete(ps, "service-a")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			policies := map[string]*securityv1.AuthorizationPolicy{}
			for name, p := range dev.authzPolicies {
				policies[name] = p.DeepCopy()
			}
			tt.loosen(policies)
			if p := checkAllowGraph(policies, lim, want); len(p) == 0 {
				t.Fatal("the loosened policy passed the allow-graph check")
			}
		})
	}
}

// The same, through the files: a copy of this folder whose mesh component
// also lets service-b call service-c renders fine, and the check refuses it.
func TestAllowGraphCatchesALoosenedFile(t *testing.T) {
	root := copyDeployTree(t)
	ns := siteNamespace(t, root)
	file := filepath.Join(root, "components", "mesh", "authorizationpolicies.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	allowed := "        - " + principal("default", "service-a") + "\n"
	if strings.Count(string(data), allowed) != 1 {
		t.Fatalf("%s: want service-c's one caller line %q", file, allowed)
	}
	loosened := strings.Replace(string(data), allowed, allowed+"        - "+principal("default", "service-b")+"\n", 1)
	if err := os.WriteFile(file, []byte(loosened), 0o644); err != nil {
		t.Fatal(err)
	}
	dev := renderOverlay(t, root, "dev")
	problems := checkAllowGraph(dev.authzPolicies, limits(t), wantEdges(ns, true))
	want := "unexpected allowed call " + edge{principal(ns, "service-b"), "service-c"}.String()
	if !slices.Contains(problems, want) {
		t.Fatalf("problems %v, want %q", problems, want)
	}
}
