package deploy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	networkingapi "istio.io/api/networking/v1alpha3"
	securityapi "istio.io/api/security/v1beta1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trustchain/trustchain/adapters/httpapi/wire"
)

// The requests the ingress is probed with: every method against the API's
// routes and their near misses. Only GET and HEAD of /products and
// /products/{id} (anything under /products/) may reach service-a.
var (
	probeMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
	probePaths   = []string{
		wire.ProductsPath, wire.ProductsPath + "/", wire.ProductsPath + "/7", wire.ProductsPath + "/7/x",
		wire.ProductsPath + "X", wire.ProductsPath + ".json", "/product", "/", "/x" + wire.ProductsPath,
		wire.HealthzPath, wire.ReadyzPath, wire.MetricsPath,
	}
)

func isAPIRoute(method, path string) bool {
	return (method == "GET" || method == "HEAD") &&
		(path == wire.ProductsPath || strings.HasPrefix(path, wire.ProductsPath+"/"))
}

// routeProblems probes admits with every request and reports each one it
// routes that is not an API route, and each API route it does not.
func routeProblems(where string, admits func(method, path string) bool) []string {
	var problems []string
	for _, m := range probeMethods {
		for _, p := range probePaths {
			switch got, want := admits(m, p), isAPIRoute(m, p); {
			case got && !want:
				problems = append(problems, fmt.Sprintf("%s routes %s %s to service-a", where, m, p))
			case !got && want:
				problems = append(problems, fmt.Sprintf("%s does not route %s %s", where, m, p))
			}
		}
	}
	return problems
}

// ingressProblems checks that b exposes service-a, and only its API routes,
// through exactly one ingress: Istio's classic Gateway and VirtualService,
// or a Gateway API Gateway and HTTPRoute.
func ingressProblems(b *bundle, ns string, apiPort int32) []string {
	var ingresses []*gatewayv1.Gateway
	for _, name := range sortedKeys(b.k8sGateways) {
		if gw := b.k8sGateways[name]; gw.Spec.GatewayClassName != waypointClass {
			ingresses = append(ingresses, gw)
		}
	}
	classic := len(b.gateways) + len(b.virtualServices)
	gatewayAPI := len(ingresses) + len(b.httpRoutes)
	switch {
	case classic != 0 && gatewayAPI != 0:
		return []string{"both a classic Istio ingress and a Gateway API one"}
	case classic != 0:
		return classicIngressProblems(b, ns, apiPort)
	case gatewayAPI != 0:
		return gatewayAPIIngressProblems(b, ingresses, apiPort)
	default:
		return []string{"no ingress: service-a is not exposed"}
	}
}

func classicIngressProblems(b *bundle, ns string, apiPort int32) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if len(b.gateways) != 1 || len(b.virtualServices) != 1 {
		return []string{fmt.Sprintf("%d Gateways, %d VirtualServices: want one of each", len(b.gateways), len(b.virtualServices))}
	}
	var gwName string
	for name, gw := range b.gateways {
		gwName = name
		var https bool
		for _, s := range gw.Spec.GetServers() {
			for _, h := range s.GetHosts() {
				if h != "./"+publicHost && h != ns+"/"+publicHost {
					bad("Gateway host %q: want %s bound to this namespace", h, publicHost)
				}
			}
			switch s.GetPort().GetProtocol() {
			case "HTTPS":
				https = s.GetTls().GetMode() == networkingapi.ServerTLSSettings_SIMPLE && s.GetTls().GetCredentialName() != ""
			case "HTTP":
				if !s.GetTls().GetHttpsRedirect() {
					bad("plain HTTP server on port %d does not redirect to HTTPS", s.GetPort().GetNumber())
				}
			default:
				bad("unexpected server protocol %q", s.GetPort().GetProtocol())
			}
		}
		if !https {
			bad("no HTTPS server with a credentialName")
		}
	}
	for name, vs := range b.virtualServices {
		where := "VirtualService " + name
		if !slices.Equal(vs.Spec.GetHosts(), []string{publicHost}) || !slices.Equal(vs.Spec.GetGateways(), []string{gwName}) {
			bad("%s: hosts %v gateways %v, want [%s] via [%s]", where, vs.Spec.GetHosts(), vs.Spec.GetGateways(), publicHost, gwName)
		}
		if len(vs.Spec.GetHttp()) == 0 || len(vs.Spec.GetTcp()) != 0 || len(vs.Spec.GetTls()) != 0 {
			bad("%s: want HTTP routes only", where)
		}
		for i, route := range vs.Spec.GetHttp() {
			if err := onlyFields(route, "match", "route"); err != nil {
				bad("%s route %d: %v", where, i, err)
			}
			for _, m := range route.GetMatch() {
				if err := onlyFields(m, "uri", "method"); err != nil {
					bad("%s route %d match: %v", where, i, err)
				}
				if m.GetUri().GetRegex() != "" || m.GetMethod().GetRegex() != "" || m.GetMethod().GetPrefix() != "" {
					bad("%s route %d: a regex or prefix the check does not model: %v", where, i, m)
				}
			}
			for _, dst := range route.GetRoute() {
				if dst.GetDestination().GetHost() != "service-a."+ns+".svc.cluster.local" || dst.GetDestination().GetPort().GetNumber() != uint32(apiPort) {
					bad("%s route %d goes to %v, want service-a's API port", where, i, dst.GetDestination())
				}
			}
		}
		problems = append(problems, routeProblems(where, func(method, path string) bool {
			for _, route := range vs.Spec.GetHttp() {
				if len(route.GetMatch()) == 0 {
					return true
				}
				for _, m := range route.GetMatch() {
					if vsMatches(m, method, path) {
						return true
					}
				}
			}
			return false
		})...)
	}
	return problems
}

// vsMatches is Istio's match of a request against a VirtualService's
// exact or prefix conditions (an absent condition matches anything).
func vsMatches(m *networkingapi.HTTPMatchRequest, method, path string) bool {
	stringMatch := func(sm *networkingapi.StringMatch, s string) bool {
		switch {
		case sm == nil:
			return true
		case sm.GetExact() != "":
			return s == sm.GetExact()
		case sm.GetPrefix() != "":
			return strings.HasPrefix(s, sm.GetPrefix())
		default:
			return true
		}
	}
	return stringMatch(m.GetUri(), path) && stringMatch(m.GetMethod(), method)
}

func gatewayAPIIngressProblems(b *bundle, ingresses []*gatewayv1.Gateway, apiPort int32) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if len(ingresses) != 1 || len(b.httpRoutes) != 1 {
		return []string{fmt.Sprintf("%d Gateway API ingresses, %d HTTPRoutes: want one of each", len(ingresses), len(b.httpRoutes))}
	}
	gw := ingresses[0]
	where := "Gateway " + gw.Name
	if gw.Spec.GatewayClassName != ingressClass {
		bad("%s: gatewayClassName %q, want %s (Istio deploys it)", where, gw.Spec.GatewayClassName, ingressClass)
	}
	if len(gw.Spec.Listeners) == 0 {
		bad("%s: no listener", where)
	}
	for _, l := range gw.Spec.Listeners {
		tls := l.TLS
		if l.Protocol != gatewayv1.HTTPSProtocolType || l.Port != 443 || l.Hostname == nil || string(*l.Hostname) != publicHost ||
			tls == nil || (tls.Mode != nil && *tls.Mode != gatewayv1.TLSModeTerminate) || len(tls.CertificateRefs) == 0 {
			bad("%s listener %s: want HTTPS on 443 for %s, terminating TLS with a certificate", where, l.Name, publicHost)
		}
		if ar := l.AllowedRoutes; ar != nil && ar.Namespaces != nil && ar.Namespaces.From != nil && *ar.Namespaces.From != gatewayv1.NamespacesFromSame {
			bad("%s listener %s: routes from %s namespaces may attach", where, l.Name, *ar.Namespaces.From)
		}
	}
	for name, route := range b.httpRoutes {
		where := "HTTPRoute " + name
		for _, ref := range route.Spec.ParentRefs {
			if string(ref.Name) != gw.Name || ref.Namespace != nil || (ref.Kind != nil && *ref.Kind != "Gateway") {
				bad("%s: parent %+v, want Gateway %s", where, ref, gw.Name)
			}
		}
		if len(route.Spec.ParentRefs) == 0 {
			bad("%s: no parent", where)
		}
		if len(route.Spec.Hostnames) != 1 || string(route.Spec.Hostnames[0]) != publicHost {
			bad("%s: hostnames %v, want [%s]", where, route.Spec.Hostnames, publicHost)
		}
		for i, rule := range route.Spec.Rules {
			if len(rule.Filters) != 0 {
				bad("%s rule %d: filters the check does not model", where, i)
			}
			for _, m := range rule.Matches {
				if len(m.Headers) != 0 || len(m.QueryParams) != 0 {
					bad("%s rule %d: header or query conditions the check does not model", where, i)
				}
				if m.Path != nil && m.Path.Type != nil && *m.Path.Type == gatewayv1.PathMatchRegularExpression {
					bad("%s rule %d: a regular expression the check does not model", where, i)
				}
			}
			if len(rule.BackendRefs) == 0 {
				bad("%s rule %d: no backend", where, i)
			}
			for _, br := range rule.BackendRefs {
				if string(br.Name) != "service-a" || br.Port == nil || *br.Port != apiPort || br.Namespace != nil ||
					(br.Kind != nil && *br.Kind != "Service") || (br.Group != nil && *br.Group != "") || len(br.Filters) != 0 {
					bad("%s rule %d: backend %+v, want service-a's API port", where, i, br.BackendObjectReference)
				}
			}
		}
		problems = append(problems, routeProblems(where, func(method, path string) bool {
			for _, rule := range route.Spec.Rules {
				if len(rule.Matches) == 0 {
					return true // the API's default: PathPrefix "/"
				}
				for _, m := range rule.Matches {
					if httpRouteMatches(m, method, path) {
						return true
					}
				}
			}
			return false
		})...)
	}
	return problems
}

// httpRouteMatches is the Gateway API's match: Exact, or PathPrefix by
// whole path elements with a trailing "/" ignored; no path means
// PathPrefix "/", no method any method.
func httpRouteMatches(m gatewayv1.HTTPRouteMatch, method, path string) bool {
	if m.Method != nil && string(*m.Method) != method {
		return false
	}
	typ, value := gatewayv1.PathMatchPathPrefix, "/"
	if m.Path != nil {
		if m.Path.Type != nil {
			typ = *m.Path.Type
		}
		if m.Path.Value != nil {
			value = *m.Path.Value
		}
	}
	switch typ {
	case gatewayv1.PathMatchExact:
		return path == value
	case gatewayv1.PathMatchPathPrefix:
		prefix := strings.TrimSuffix(value, "/")
		return prefix == "" || path == prefix || strings.HasPrefix(path, prefix+"/")
	default:
		return true // not modelled, and reported by the caller
	}
}

func TestOnlyServiceAIsExposed(t *testing.T) {
	ns := siteNamespace(t, ".")
	for _, b := range renderAll(t, ".") {
		t.Run(b.overlay, func(t *testing.T) {
			for _, p := range ingressProblems(b, ns, apiPort(t)) {
				t.Error(p)
			}
		})
	}
}

// Loosen each ingress on purpose and show the checks catch it.
func TestIngressCatchesLoosening(t *testing.T) {
	ns := siteNamespace(t, ".")
	lim := limits(t)
	check := func(b *bundle) []string {
		return append(ingressProblems(b, ns, apiPort(t)), meshProblems(b, lim, wantEdgesFor(b, ns))...)
	}
	vsMatch := func(b *bundle, i int) *networkingapi.HTTPMatchRequest {
		return b.virtualServices["service-a"].Spec.Http[0].Match[i]
	}
	t.Run("classic", func(t *testing.T) {
		checkLoosenings(t, renderOverlay(t, ".", "dev"), check, []loosening{
			{"a match without a method", "routes POST /products to service-a", func(b *bundle) {
				vsMatch(b, 0).Method = nil
			}},
			{"POST on /products/{id}", "routes POST /products/7 to service-a", func(b *bundle) {
				vsMatch(b, 2).Method = &networkingapi.StringMatch{MatchType: &networkingapi.StringMatch_Exact{Exact: "POST"}}
			}},
			{"the prefix loses its slash", "routes GET /productsX to service-a", func(b *bundle) {
				vsMatch(b, 2).Uri = &networkingapi.StringMatch{MatchType: &networkingapi.StringMatch_Prefix{Prefix: wire.ProductsPath}}
			}},
			{"every path", "routes GET /healthz to service-a", func(b *bundle) {
				vsMatch(b, 0).Uri = &networkingapi.StringMatch{MatchType: &networkingapi.StringMatch_Prefix{Prefix: "/"}}
			}},
			{"a route without a match", "routes DELETE / to service-a", func(b *bundle) {
				b.virtualServices["service-a"].Spec.Http[0].Match = nil
			}},
			{"a header condition", "sets [headers]", func(b *bundle) {
				vsMatch(b, 1).Headers = map[string]*networkingapi.StringMatch{"x": {MatchType: &networkingapi.StringMatch_Exact{Exact: "y"}}}
			}},
			{"/products/{id} no longer routed", "does not route GET /products/7", func(b *bundle) {
				m := b.virtualServices["service-a"].Spec.Http[0]
				m.Match = m.Match[:2]
			}},
			{"plain HTTP without redirect", "does not redirect", func(b *bundle) {
				b.gateways["service-a"].Spec.Servers[1].Tls = nil
			}},
			{"any host", "Gateway host", func(b *bundle) {
				b.gateways["service-a"].Spec.Servers[0].Hosts = []string{"*/*"}
			}},
		})
	})
	route := func(b *bundle) *gatewayv1.HTTPRoute { return b.httpRoutes["service-a"] }
	ingress := func(b *bundle) *gatewayv1.Gateway { return b.k8sGateways["trustchain-ingress"] }
	t.Run("gateway-api", func(t *testing.T) {
		checkLoosenings(t, renderOverlay(t, ".", "ambient"), check, []loosening{
			{"a match without a method", "routes POST /products to service-a", func(b *bundle) {
				route(b).Spec.Rules[0].Matches[0].Method = nil
			}},
			{"POST", "routes POST /products/7 to service-a", func(b *bundle) {
				post := gatewayv1.HTTPMethodPost
				route(b).Spec.Rules[0].Matches[1].Method = &post
			}},
			{"every path", "routes GET /healthz to service-a", func(b *bundle) {
				slash := "/"
				route(b).Spec.Rules[0].Matches[0].Path.Value = &slash
			}},
			{"a rule without matches", "routes DELETE / to service-a", func(b *bundle) {
				route(b).Spec.Rules[0].Matches = nil
			}},
			{"an exact match drops /products/{id}", "does not route GET /products/7", func(b *bundle) {
				exact := gatewayv1.PathMatchExact
				for i := range route(b).Spec.Rules[0].Matches {
					route(b).Spec.Rules[0].Matches[i].Path.Type = &exact
				}
			}},
			{"any hostname", "hostnames", func(b *bundle) {
				route(b).Spec.Hostnames = nil
			}},
			{"a plain HTTP listener", "want HTTPS on 443", func(b *bundle) {
				gw := ingress(b)
				gw.Spec.Listeners = append(gw.Spec.Listeners, gatewayv1.Listener{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType})
			}},
			{"routes from every namespace", "routes from All namespaces", func(b *bundle) {
				all := gatewayv1.NamespacesFromAll
				ingress(b).Spec.Listeners[0].AllowedRoutes.Namespaces.From = &all
			}},
			{"the gateway's policy opens POST", "trustchain-ingress rule 0", func(b *bundle) {
				op := b.authzPolicies["trustchain-ingress"].Spec.Rules[0].To[0].Operation
				op.Methods = append(op.Methods, "POST")
			}},
			{"the gateway's policy opens every path", "trustchain-ingress rule 0", func(b *bundle) {
				b.authzPolicies["trustchain-ingress"].Spec.Rules[0].To = nil
			}},
			{"the gateway's policy is dropped", "allow-nothing refuses every client", func(b *bundle) {
				delete(b.authzPolicies, "trustchain-ingress")
			}},
			{"the gateway's policy requires a source", "trustchain-ingress rule 0", func(b *bundle) {
				b.authzPolicies["trustchain-ingress"].Spec.Rules[0].From = []*securityapi.Rule_From{{Source: &securityapi.Source{NotPrincipals: []string{"x"}}}}
			}},
		})
	})
}

// components/ingress-gateway-api is a drop-in for components/ingress-istio
// in the sidecar overlays too: swap it into every overlay of a copy of this
// folder, move the namespace, and every proof still holds, with the
// gateway's identity as service-a's caller in the mesh and in the app.
func TestGatewayAPIIngressSwapsIn(t *testing.T) {
	root := copyDeployTree(t)
	const newNS = "trustchain-moved"
	_, site := readSiteNamespace(t, root)
	data, err := os.ReadFile(site)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(site, []byte(namespaceLine.ReplaceAllString(string(data), "namespace: "+newNS)), 0o644); err != nil {
		t.Fatal(err)
	}
	names, err := filepath.Glob(filepath.Join(root, "overlays", "*", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const classic, gatewayAPI = "- ../../components/ingress-istio\n", "- ../../components/ingress-gateway-api\n"
	swapped := 0
	for _, file := range names {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), classic) {
			swapped++
			if err := os.WriteFile(file, []byte(strings.Replace(string(data), classic, gatewayAPI, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if swapped == 0 {
		t.Fatal("no overlay includes components/ingress-istio")
	}
	lim := limits(t)
	for _, b := range renderAll(t, root) {
		t.Run(b.overlay, func(t *testing.T) {
			if got, want := ingressPrincipal(b), principal(newNS, "trustchain-ingress-istio"); got != want {
				t.Errorf("ingress principal %q, want %q", got, want)
			}
			for _, p := range ingressProblems(b, newNS, apiPort(t)) {
				t.Error(p)
			}
			for _, p := range meshProblems(b, lim, wantEdgesFor(b, newNS)) {
				t.Error(p)
			}
			if got := sortedKeys(b.namespaces); len(got) != 1 || got[0] != newNS {
				t.Errorf("namespaces %v, want [%s]", got, newNS)
			}
		})
	}
}
