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
	typeapi "istio.io/api/type/v1beta1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trustchain/trustchain/adapters/httpapi/wire"
	"github.com/trustchain/trustchain/domain"
)

// edge is one allowed call: a caller's SPIFFE principal to a workload.
type edge struct{ from, to string }

func (e edge) String() string { return e.from + " -> " + e.to }

func principal(ns, serviceAccount string) string {
	return "cluster.local/ns/" + ns + "/sa/" + serviceAccount
}

// wantEdges is the whole allowed call graph, read from the chain's one
// table: the ingress gateway calls the edge hop, every other hop is called
// by the hop before it; in dev, the hop that reads the store also calls its
// MySQL.
func wantEdges(ns, ingress string, withMySQL bool) []edge {
	var want []edge
	for _, h := range domain.Chain() {
		from := ingress
		if !h.IsEdge() {
			caller, ok := domain.HopOf(h.CalledBy)
			if !ok {
				panic(fmt.Sprintf("hop %s is called by unknown role %q", h.Role, h.CalledBy))
			}
			from = principal(ns, caller.ServiceAccount)
		}
		want = append(want, edge{from, h.ServiceAccount})
		if withMySQL && h.ReadsStore() {
			want = append(want, edge{principal(ns, h.ServiceAccount), "mysql"})
		}
	}
	return want
}

// Istio's names for what it deploys for a Gateway API Gateway.
const (
	ingressClass        = "istio"          // Istio deploys an ingress gateway
	waypointClass       = "istio-waypoint" // Istio deploys a waypoint
	serviceAccountAnnot = "gateway.istio.io/service-account"
	useWaypointLabel    = "istio.io/use-waypoint"
	ingressUsesWaypoint = "istio.io/ingress-use-waypoint"
	dataplaneModeLabel  = "istio.io/dataplane-mode"
	xfccAnnotation      = "ambient.istio.io/xfcc-include-client-identity"
)

// istioServiceAccount is the identity of the proxy Istio deploys for gw.
// Istio's gateway controller names the Deployment and its ServiceAccount
// "<name>-<gatewayClassName>", except for the waypoint class, which keeps
// the Gateway's name; the annotation gateway.istio.io/service-account
// overrides it (istio/istio pilot/pkg/config/kube/gatewaycommon:
// deploymentcontroller.go configureIstioGateway, gateway_utils.go
// GetDefaultName, classinfo.go DisableNameSuffix).
func istioServiceAccount(gw *gatewayv1.Gateway) string {
	if sa := gw.Annotations[serviceAccountAnnot]; sa != "" {
		return sa
	}
	if gw.Spec.GatewayClassName == waypointClass {
		return gw.Name
	}
	return gw.Name + "-" + string(gw.Spec.GatewayClassName)
}

// ingressPrincipal is who calls the edge hop in b: the gateway Istio deploys
// for a Gateway API ingress, or else the classic istio-ingressgateway.
func ingressPrincipal(b *bundle) string {
	for _, gw := range b.k8sGateways {
		if gw.Spec.GatewayClassName == ingressClass {
			return principal(gw.Namespace, istioServiceAccount(gw))
		}
	}
	return ingressGateway
}

// isAmbient reports whether b enrols its namespace in ambient mode.
func isAmbient(b *bundle) bool {
	for _, ns := range b.namespaceObjects {
		if ns.Labels[dataplaneModeLabel] == "ambient" {
			return true
		}
	}
	return false
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

// The API's only routes, as the mesh must admit them: GET and HEAD of the
// product list and of one product ("/products/*" is Istio's prefix match).
var (
	apiMethods = []string{"GET", "HEAD"}
	apiPaths   = []string{wire.ProductsPath, wire.ProductsPath + "/*"}
	adminPaths = []string{wire.HealthzPath, wire.ReadyzPath, wire.MetricsPath}
)

// graph is what the AuthorizationPolicies admit, before the data plane is
// taken into account.
type graph struct {
	problems []string
	// l7 holds, per workload, the principals its L7 policy admits on the
	// API port: enforced by the workload's sidecar, or by the waypoint for a
	// policy attached to its Service.
	l7 map[string][]string
	// l4 holds, per workload, the principals ztunnel admits on the API port
	// (ambient only).
	l4 map[string][]string
	// ingresses are the Gateway API ingress gateways an ALLOW policy opens.
	ingresses map[string]bool
}

func (g *graph) bad(where, format string, args ...any) {
	g.problems = append(g.problems, where+": "+fmt.Sprintf(format, args...))
}

// allowGraph computes, from the AuthorizationPolicies and the data plane
// they run on, which principal may call which workload, and lists every way
// the policy opens more than that or does not take effect.
//
// With sidecars, a policy selects pods and its sidecar applies it whole. In
// ambient mode, a policy that selects pods is ztunnel's, which sees only
// who connects to which port; a policy attached to a Service (targetRefs) is
// its waypoint's. A call passes the waypoint's L7 policy only if the Service
// is bound to a waypoint (and, for the ingress gateway's calls, asks ingress
// traffic to use it) and ztunnel admits that waypoint on the API port;
// whatever else ztunnel admits on the API port reaches the pod directly,
// past every L7 check.
func allowGraph(b *bundle, lim policyLimits) (edges []edge, problems []string) {
	g := &graph{l7: map[string][]string{}, l4: map[string][]string{}, ingresses: map[string]bool{}}
	ambient := isAmbient(b)
	for _, name := range sortedKeys(b.authzPolicies) {
		spec := &b.authzPolicies[name].Spec
		if spec.GetAction() != securityapi.AuthorizationPolicy_ALLOW {
			g.bad(name, "action %v: only ALLOW policies are expected", spec.GetAction())
		}
		if spec.GetTargetRef() != nil {
			g.bad(name, "targetRef: use targetRefs")
		}
		refs, sel := spec.GetTargetRefs(), spec.GetSelector().GetMatchLabels()
		switch {
		case len(refs) != 0 && len(sel) != 0:
			g.bad(name, "both a selector and targetRefs")
		case len(refs) == 0 && len(sel) == 0:
			if len(spec.GetRules()) != 0 {
				g.bad(name, "namespace-wide ALLOW with rules opens every workload")
			}
		case len(refs) != 0:
			g.targeted(b, name, spec, ambient, lim)
		default:
			workload, ok := sel["app"]
			if len(sel) != 1 || !ok {
				g.bad(name, "selector %v: want exactly app=<workload>", sel)
				continue
			}
			if ambient {
				g.l4[workload] = append(g.l4[workload], g.ztunnelRules(name, workload, spec.GetRules(), lim)...)
			} else {
				g.l7[workload] = append(g.l7[workload], g.l7Rules(name, workload, spec.GetRules(), lim)...)
			}
		}
	}
	for _, name := range sortedKeys(b.k8sGateways) {
		if b.k8sGateways[name].Spec.GatewayClassName == ingressClass && !g.ingresses[name] {
			g.bad("Gateway "+name, "no ALLOW policy targets it: allow-nothing refuses every client at the ingress")
		}
	}
	if !ambient {
		for _, w := range sortedKeys(g.l7) {
			for _, p := range g.l7[w] {
				edges = append(edges, edge{p, w})
			}
		}
		return edges, g.problems
	}

	ingress := ingressPrincipal(b)
	workloads := map[string]bool{}
	for w := range g.l7 {
		workloads[w] = true
	}
	for w := range g.l4 {
		workloads[w] = true
	}
	for _, w := range sortedKeys(workloads) {
		waypoint := g.waypointOf(b, w, len(g.l7[w]) != 0)
		throughWaypoint := waypoint != "" && slices.Contains(g.l4[w], waypoint)
		if len(g.l7[w]) != 0 && !throughWaypoint {
			g.bad(w, "its waypoint policy admits %v, but ztunnel does not admit the waypoint %q on port %s, so the waypoint cannot reach it", g.l7[w], waypoint, lim.apiPort)
		}
		for _, p := range g.l7[w] {
			if !throughWaypoint {
				continue
			}
			if p == ingress && b.services[w].Labels[ingressUsesWaypoint] != "true" {
				// The ingress gateway dials the pods straight (ztunnel
				// decides, below), skipping the waypoint.
				continue
			}
			edges = append(edges, edge{p, w})
		}
		for _, p := range g.l4[w] {
			if p == waypoint {
				continue
			}
			// Straight to the pod: no waypoint, no L7 check, no XFCC. Only
			// a workload without a waypoint (MySQL) is reached this way.
			if waypoint != "" {
				g.bad(w, "ztunnel admits %s on port %s straight to the pod, past the waypoint's L7 policy", p, lim.apiPort)
			}
			edges = append(edges, edge{p, w})
		}
	}
	return edges, g.problems
}

// targeted handles a policy attached with targetRefs: to a Service (its
// waypoint applies it) or to a Gateway API ingress gateway.
func (g *graph) targeted(b *bundle, name string, spec *securityapi.AuthorizationPolicy, ambient bool, lim policyLimits) {
	refs := spec.GetTargetRefs()
	if len(refs) != 1 {
		g.bad(name, "%d targetRefs: want one", len(refs))
		return
	}
	ref := refs[0]
	switch {
	case ref.GetGroup() == "" && ref.GetKind() == "Service":
		if !ambient {
			g.bad(name, "attached to Service %s, but only a waypoint applies that and this overlay runs sidecars", ref.GetName())
			return
		}
		svc, ok := b.services[ref.GetName()]
		if !ok {
			g.bad(name, "targets Service %s, which this overlay does not have", ref.GetName())
			return
		}
		workload := svc.Spec.Selector["app"]
		g.l7[workload] = append(g.l7[workload], g.l7Rules(name, workload, spec.GetRules(), lim)...)
	case ref.GetGroup() == gatewayv1.GroupName && ref.GetKind() == "Gateway":
		gw, ok := b.k8sGateways[ref.GetName()]
		if !ok || gw.Spec.GatewayClassName != ingressClass {
			g.bad(name, "targets Gateway %s: only a Gateway API ingress (class %s) is expected", ref.GetName(), ingressClass)
			return
		}
		g.ingresses[ref.GetName()] = true
		g.ingressRules(name, spec.GetRules())
	default:
		g.bad(name, "targets %s %s/%s: not modelled", ref.GetKind(), ref.GetGroup(), ref.GetName())
	}
}

// l7Rules checks an L7 policy's rules (a sidecar's, or a waypoint's for one
// Service) and returns the principals it admits on the API port: only
// callers named by exact principal, with a JWT, for GET or HEAD of the API's
// routes; plus, open to any mesh peer, GETs of the admin paths on the admin
// port.
func (g *graph) l7Rules(name, workload string, rules []*securityapi.Rule, lim policyLimits) (principals []string) {
	for i, rule := range rules {
		where := fmt.Sprintf("%s rule %d", name, i)
		if len(rule.GetWhen()) != 0 {
			g.bad(where, "has conditions (when) the check does not model")
		}
		if len(rule.GetTo()) == 0 {
			g.bad(where, "no operation: allows every port, method and path")
			continue
		}
		if len(rule.GetFrom()) == 0 || onAdminPort(rule, lim) {
			// The admin rule: the scraper alone, GET, admin port, admin paths.
			g.adminSource(where, rule)
			for _, to := range rule.GetTo() {
				op := to.GetOperation()
				if onlyFields(op, "ports", "methods", "paths") != nil ||
					!slices.Equal(op.GetPorts(), []string{lim.adminPort}) ||
					!slices.Equal(op.GetMethods(), []string{"GET"}) ||
					len(op.GetPaths()) == 0 || !subset(op.GetPaths(), adminPaths) {
					g.bad(where, "admin rule not limited to GET %v on port %s: %v", adminPaths, lim.adminPort, op)
				}
			}
			continue
		}
		for _, from := range rule.GetFrom() {
			src := from.GetSource()
			if err := onlyFields(src, "principals", "requestPrincipals"); err != nil {
				g.bad(where, "source %v", err)
			}
			if workload != "mysql" && !slices.Equal(src.GetRequestPrincipals(), []string{"*"}) {
				g.bad(where, "requestPrincipals %v: want [\"*\"] so a call without a JWT is refused", src.GetRequestPrincipals())
			}
			for _, p := range src.GetPrincipals() {
				if strings.Contains(p, "*") {
					g.bad(where, "wildcard principal %q", p)
				}
				principals = append(principals, p)
			}
		}
		for _, to := range rule.GetTo() {
			op := to.GetOperation()
			if workload == "mysql" {
				if onlyFields(op, "ports") != nil || !slices.Equal(op.GetPorts(), []string{lim.mysqlPort}) {
					g.bad(where, "want only port %s, got %v", lim.mysqlPort, op)
				}
				continue
			}
			if onlyFields(op, "ports", "methods", "paths") != nil ||
				!slices.Equal(op.GetPorts(), []string{lim.apiPort}) ||
				!slices.Equal(op.GetMethods(), apiMethods) ||
				!slices.Equal(op.GetPaths(), apiPaths) {
				g.bad(where, "want only %v %v on port %s, got %v", apiMethods, apiPaths, lim.apiPort, op)
			}
		}
	}
	return principals
}

// ztunnelRules checks an ambient L4 policy's rules and returns the
// principals it admits on the API port. ztunnel sees no HTTP, so a rule may
// name only principals and ports: exact principals on the API port (MySQL's
// port for MySQL), or, open to any mesh peer, the admin port alone.
func (g *graph) ztunnelRules(name, workload string, rules []*securityapi.Rule, lim policyLimits) (principals []string) {
	port := lim.apiPort
	if workload == "mysql" {
		port = lim.mysqlPort
	}
	for i, rule := range rules {
		where := fmt.Sprintf("%s rule %d", name, i)
		if len(rule.GetWhen()) != 0 {
			g.bad(where, "has conditions (when) the check does not model")
		}
		if len(rule.GetTo()) == 0 {
			g.bad(where, "no operation: allows every port")
			continue
		}
		want := port
		if len(rule.GetFrom()) == 0 || onAdminPort(rule, lim) {
			want = lim.adminPort
			g.adminSource(where, rule)
			for _, to := range rule.GetTo() {
				if op := to.GetOperation(); onlyFields(op, "ports") != nil || !slices.Equal(op.GetPorts(), []string{want}) {
					g.bad(where, "ports %v: want [%s] (the admin rule)", op.GetPorts(), want)
				}
			}
			continue
		}
		for _, to := range rule.GetTo() {
			op := to.GetOperation()
			if err := onlyFields(op, "ports"); err != nil {
				g.bad(where, "ztunnel enforces L4 only: operation %v", err)
			}
			if !slices.Equal(op.GetPorts(), []string{want}) {
				g.bad(where, "ports %v: want [%s]", op.GetPorts(), want)
			}
		}
		for _, from := range rule.GetFrom() {
			src := from.GetSource()
			if err := onlyFields(src, "principals"); err != nil {
				g.bad(where, "ztunnel enforces L4 only: source %v", err)
			}
			if len(src.GetPrincipals()) == 0 {
				g.bad(where, "a source without principals admits every peer")
			}
			for _, p := range src.GetPrincipals() {
				if strings.Contains(p, "*") {
					g.bad(where, "wildcard principal %q", p)
				}
				principals = append(principals, p)
			}
		}
	}
	return principals
}

// onAdminPort reports whether a rule's operations name the admin port.
func onAdminPort(rule *securityapi.Rule, lim policyLimits) bool {
	for _, to := range rule.GetTo() {
		if slices.Contains(to.GetOperation().GetPorts(), lim.adminPort) {
			return true
		}
	}
	return false
}

// adminSource checks that an admin-port rule admits the Prometheus scraper
// components/site names, by its principal alone: no other workload may
// reach a role's probes and metrics (the kubelet's probes pass outside
// the policy).
func (g *graph) adminSource(where string, rule *securityapi.Rule) {
	from := rule.GetFrom()
	if len(from) != 1 || onlyFields(from[0].GetSource(), "principals") != nil ||
		!slices.Equal(from[0].GetSource().GetPrincipals(), []string{scraperPrincipal}) {
		g.bad(where, "the admin port admits %v: want only the scraper %s", from, scraperPrincipal)
	}
}

// scraperPrincipal is the Prometheus that components/site names.
var scraperPrincipal = func() string {
	site, err := os.ReadFile("components/site/kustomization.yaml")
	if err != nil {
		panic(err)
	}
	_, rest, _ := strings.Cut(string(site), "- PRINCIPAL=")
	line, _, _ := strings.Cut(rest, "\n")
	return line
}()

// ingressRules checks the policy that opens a Gateway API ingress gateway
// to clients: anyone (the edge is public), but only GET or HEAD of the
// API's routes.
func (g *graph) ingressRules(name string, rules []*securityapi.Rule) {
	if len(rules) == 0 {
		g.bad(name, "no rules: the ingress admits nobody")
	}
	for i, rule := range rules {
		where := fmt.Sprintf("%s rule %d", name, i)
		if len(rule.GetWhen()) != 0 || len(rule.GetFrom()) != 0 {
			g.bad(where, "conditions or sources the check does not model")
		}
		if len(rule.GetTo()) == 0 {
			g.bad(where, "no operation: opens every method and path")
		}
		for _, to := range rule.GetTo() {
			op := to.GetOperation()
			if onlyFields(op, "methods", "paths") != nil ||
				!slices.Equal(op.GetMethods(), apiMethods) || !slices.Equal(op.GetPaths(), apiPaths) {
				g.bad(where, "want only %v %v, got %v", apiMethods, apiPaths, op)
			}
		}
	}
}

// waypointOf returns the principal of the waypoint workload w's Service is
// bound to, or "" with a problem when there is none that can serve it:
// Istio's waypoint class, its HBONE listener, and the XFCC annotation the
// apps depend on. needed says whether w has a waypoint policy at all.
func (g *graph) waypointOf(b *bundle, w string, needed bool) string {
	svc, ok := b.services[w]
	if !ok {
		if needed {
			g.bad(w, "no Service to attach its waypoint policy to")
		}
		return ""
	}
	name := svc.Labels[useWaypointLabel]
	if name == "" {
		if needed {
			g.bad("Service "+w, "no %s label: no waypoint applies its policy", useWaypointLabel)
		}
		return ""
	}
	gw, ok := b.k8sGateways[name]
	if !ok {
		g.bad("Service "+w, "bound to waypoint %q, which this overlay does not deploy", name)
		return ""
	}
	where := "waypoint " + name
	if gw.Spec.GatewayClassName != waypointClass {
		g.bad(where, "gatewayClassName %q, want %s", gw.Spec.GatewayClassName, waypointClass)
		return ""
	}
	if l := gw.Spec.Listeners; len(l) != 1 || l[0].Name != "mesh" || l[0].Port != 15008 || l[0].Protocol != "HBONE" {
		g.bad(where, "listeners %+v: want the one HBONE listener mesh on 15008", l)
	}
	if f := gw.Labels["istio.io/waypoint-for"]; f != "" && f != "service" && f != "all" {
		g.bad(where, "istio.io/waypoint-for=%s: it would not serve Services", f)
	}
	if gw.Annotations[xfccAnnotation] != "true" {
		g.bad(where, "%s is not \"true\": it would forward no caller identity, and the apps (PEER_AUTH=xfcc) would refuse every call", xfccAnnotation)
	}
	return principal(gw.Namespace, istioServiceAccount(gw))
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

// checkAllowGraph is the assertion: no problem, exactly the wanted edges,
// and the namespace-wide allow-nothing under them.
func checkAllowGraph(b *bundle, lim policyLimits, want []edge) []string {
	edges, problems := allowGraph(b, lim)
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
	if p, ok := b.authzPolicies["allow-nothing"]; !ok || len(p.Spec.GetRules()) != 0 || p.Spec.GetSelector() != nil || len(p.Spec.GetTargetRefs()) != 0 {
		problems = append(problems, "no namespace-wide allow-nothing policy (spec: {})")
	}
	sort.Strings(problems)
	return problems
}

// meshProblems is everything the mesh must get right for the chain to be
// exactly gateway -> a -> c -> b: the allow graph, the JWT validation the
// policies rely on, and the caller identity each app is told to expect.
func meshProblems(b *bundle, lim policyLimits, want []edge) []string {
	problems := checkAllowGraph(b, lim, want)
	problems = append(problems, requestAuthProblems(b)...)
	problems = append(problems, appPeerProblems(b, want)...)
	sort.Strings(problems)
	return problems
}

func wantEdgesFor(b *bundle, ns string) []edge {
	_, withMySQL := b.statefulSets["mysql"]
	return wantEdges(ns, ingressPrincipal(b), withMySQL)
}

func TestAllowGraphIsExactlyTheChain(t *testing.T) {
	ns := siteNamespace(t, ".")
	for _, b := range renderAll(t, ".") {
		t.Run(b.overlay, func(t *testing.T) {
			for _, p := range meshProblems(b, limits(t), wantEdgesFor(b, ns)) {
				t.Error(p)
			}
			// Each workload has a policy of its own.
			for name, d := range b.deployments {
				if !hasPolicyFor(b, name, d.Spec.Template.Labels) {
					t.Errorf("no ALLOW policy for %s: the mesh would refuse all its traffic", name)
				}
			}
		})
	}
}

// hasPolicyFor reports whether a policy with rules selects the workload's
// pods or, in ambient mode, is attached to its Service.
func hasPolicyFor(b *bundle, workload string, labels map[string]string) bool {
	for _, p := range b.authzPolicies {
		if len(p.Spec.GetRules()) == 0 {
			continue
		}
		if sel := p.Spec.GetSelector().GetMatchLabels(); len(sel) != 0 && selects(sel, labels) {
			return true
		}
		for _, ref := range p.Spec.GetTargetRefs() {
			if ref.GetKind() == "Service" && ref.GetName() == workload {
				return true
			}
		}
	}
	return false
}

// loosening is one way to open the mesh wider than the chain, or to leave a
// part of it without effect. want, when set, is part of the problem the
// check must report, so the case fails for its own reason.
type loosening struct {
	name   string
	want   string
	loosen func(*bundle)
}

// checkLoosenings applies each loosening to a copy of b and fails the test
// if check still passes: then the check could no longer be trusted.
func checkLoosenings(t *testing.T, b *bundle, check func(*bundle) []string, tests []loosening) {
	t.Helper()
	if p := check(b); len(p) != 0 {
		t.Fatalf("the unmodified %s overlay must pass: %v", b.overlay, p)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loose := b.deepCopy()
			tt.loosen(loose)
			problems := check(loose)
			if len(problems) == 0 {
				t.Fatal("the loosened rendering passed the check")
			}
			if tt.want != "" && !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Fatalf("problems %q: none mentions %q", problems, tt.want)
			}
		})
	}
}

func apiRule(b *bundle, policy string) *securityapi.Rule {
	return b.authzPolicies[policy].Spec.Rules[0]
}

// Loosen the policy on purpose, one way at a time, and show the graph
// check catches each.
func TestAllowGraphCatchesLoosening(t *testing.T) {
	ns := siteNamespace(t, ".")
	lim := limits(t)
	dev := renderOverlay(t, ".", "dev")
	want := wantEdges(ns, ingressGateway, true)
	check := func(b *bundle) []string { return meshProblems(b, lim, want) }
	checkLoosenings(t, dev, check, []loosening{
		{"service-b may also call service-c", "unexpected allowed call " + edge{principal(ns, "service-b"), "service-c"}.String(), func(b *bundle) {
			src := apiRule(b, "service-c").From[0].Source
			src.Principals = append(src.Principals, principal(ns, "service-b"))
		}},
		{"service-a may skip service-c and call service-b", "unexpected allowed call " + edge{principal(ns, "service-a"), "service-b"}.String(), func(b *bundle) {
			src := apiRule(b, "service-b").From[0].Source
			src.Principals = append(src.Principals, principal(ns, "service-a"))
		}},
		{"the whole namespace may call service-b", "service-b rule 0: source", func(b *bundle) {
			apiRule(b, "service-b").From[0].Source.Namespaces = []string{ns}
		}},
		{"POST is allowed", "service-c rule 0: want only", func(b *bundle) {
			op := apiRule(b, "service-c").To[0].Operation
			op.Methods = append(op.Methods, "POST")
		}},
		{"HEAD becomes PUT", "service-b rule 0: want only", func(b *bundle) {
			apiRule(b, "service-b").To[0].Operation.Methods = []string{"GET", "PUT"}
		}},
		{"any path is allowed", "service-b rule 0: want only", func(b *bundle) {
			apiRule(b, "service-b").To[0].Operation.Paths = nil
		}},
		{"/products/* becomes /*", "service-c rule 0: want only", func(b *bundle) {
			apiRule(b, "service-c").To[0].Operation.Paths = []string{wire.ProductsPath, "/*"}
		}},
		{"/products/* becomes the raw prefix /products*", "service-a rule 0: want only", func(b *bundle) {
			apiRule(b, "service-a").To[0].Operation.Paths = []string{wire.ProductsPath, wire.ProductsPath + "*"}
		}},
		{"/products/{id} is open to every method", "service-b rule 0: want only", func(b *bundle) {
			r := apiRule(b, "service-b")
			r.To = append(r.To, &securityapi.Rule_To{Operation: &securityapi.Operation{
				Ports: []string{lim.apiPort}, Paths: []string{wire.ProductsPath + "/*"},
			}})
		}},
		{"service-b may GET /products/{id} on service-c", "unexpected allowed call " + edge{principal(ns, "service-b"), "service-c"}.String(), func(b *bundle) {
			p := b.authzPolicies["service-c"]
			p.Spec.Rules = append(p.Spec.Rules, &securityapi.Rule{
				From: []*securityapi.Rule_From{{Source: &securityapi.Source{
					Principals: []string{principal(ns, "service-b")}, RequestPrincipals: []string{"*"},
				}}},
				To: []*securityapi.Rule_To{{Operation: &securityapi.Operation{
					Ports: []string{lim.apiPort}, Methods: apiMethods, Paths: apiPaths,
				}}},
			})
		}},
		{"no JWT needed at the edge", "requestPrincipals", func(b *bundle) {
			apiRule(b, "service-a").From[0].Source.RequestPrincipals = nil
		}},
		{"the admin rule also opens the API port", "service-c rule 1", func(b *bundle) {
			op := b.authzPolicies["service-c"].Spec.Rules[1].To[0].Operation
			op.Ports = append(op.Ports, lim.apiPort)
		}},
		{"the admin rule also opens /products", "service-c rule 1", func(b *bundle) {
			op := b.authzPolicies["service-c"].Spec.Rules[1].To[0].Operation
			op.Paths = append(op.Paths, wire.ProductsPath)
		}},
		{"the admin rule admits every mesh peer", "service-c rule 1: the admin port admits []", func(b *bundle) {
			b.authzPolicies["service-c"].Spec.Rules[1].From = nil
		}},
		{"the admin rule admits another workload too", "service-b rule 1: the admin port admits", func(b *bundle) {
			src := b.authzPolicies["service-b"].Spec.Rules[1].From[0].Source
			src.Principals = append(src.Principals, principal(ns, "service-c"))
		}},
		{"allow-nothing allows everything", "allow-nothing", func(b *bundle) {
			b.authzPolicies["allow-nothing"].Spec.Rules = []*securityapi.Rule{{}}
		}},
		{"service-a's policy is dropped", "missing allowed call", func(b *bundle) {
			delete(b.authzPolicies, "service-a")
		}},
		{"service-c's policy is attached to its Service, which no sidecar applies", "only a waypoint applies that", func(b *bundle) {
			p := b.authzPolicies["service-c"]
			p.Spec.Selector = nil
			p.Spec.TargetRefs = []*typeapi.PolicyTargetReference{{Kind: "Service", Name: "service-c"}}
		}},
	})
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
	for _, overlay := range []string{"dev", "ambient"} {
		b := renderOverlay(t, root, overlay)
		problems := meshProblems(b, limits(t), wantEdgesFor(b, ns))
		want := "unexpected allowed call " + edge{principal(ns, "service-b"), "service-c"}.String()
		if !slices.Contains(problems, want) {
			t.Errorf("%s: problems %v, want %q", overlay, problems, want)
		}
	}
}
