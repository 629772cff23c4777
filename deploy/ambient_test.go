package deploy_test

import (
	"slices"
	"strings"
	"testing"

	securityapi "istio.io/api/security/v1beta1"
	typeapi "istio.io/api/type/v1beta1"
	corev1 "k8s.io/api/core/v1"

	"github.com/trustchain/trustchain/domain"
)

func ambientBundles(tb testing.TB) []*bundle {
	tb.Helper()
	var out []*bundle
	for _, b := range renderAll(tb, ".") {
		if isAmbient(b) {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		tb.Fatal("no overlay enrols its namespace in ambient mode")
	}
	return out
}

// Nothing of sidecar mode is left in an ambient overlay: no injection
// label on the namespace, no sidecar annotation or label on a pod, no
// holdApplicationUntilProxyStarts.
func TestAmbientLeavesNoSidecarBehind(t *testing.T) {
	for _, b := range ambientBundles(t) {
		t.Run(b.overlay, func(t *testing.T) {
			for _, leftover := range []string{"sidecar.istio.io/", "proxy.istio.io/", "holdApplicationUntilProxyStarts", "istio-injection"} {
				if strings.Contains(b.yaml, leftover) {
					t.Errorf("the rendering mentions %q", leftover)
				}
			}
			ns := siteNamespace(t, ".")
			nsObj, ok := b.namespaceObjects[ns]
			if !ok || nsObj.Labels[dataplaneModeLabel] != "ambient" {
				t.Errorf("Namespace %s not labelled %s=ambient", ns, dataplaneModeLabel)
			}
			for name, pod := range podTemplates(b) {
				if v, ok := pod.Labels[dataplaneModeLabel]; ok {
					t.Errorf("%s: pod label %s=%s opts it out of, or repeats, the namespace's mode", name, dataplaneModeLabel, v)
				}
			}
		})
	}
}

// On the API port ztunnel admits the waypoint and nothing else, for every
// workload of the chain: no other workload (not the ingress gateway, not the
// hop before it) can dial a pod IP and skip the waypoint's L7 checks.
func TestAmbientAdmitsOnlyTheWaypointOnTheAPIPort(t *testing.T) {
	lim := limits(t)
	for _, b := range ambientBundles(t) {
		for _, h := range domain.Chain() {
			w := h.ServiceAccount
			t.Run(b.overlay+"/"+w, func(t *testing.T) {
				g := &graph{}
				waypoint := g.waypointOf(b, w, true)
				if waypoint == "" {
					t.Fatalf("%s has no waypoint: %v", w, g.problems)
				}
				labels := b.deployments[w].Spec.Template.Labels
				var admitted []string
				for _, name := range sortedKeys(b.authzPolicies) {
					spec := &b.authzPolicies[name].Spec
					sel := spec.GetSelector().GetMatchLabels()
					if len(sel) == 0 || !selects(sel, labels) {
						continue
					}
					for _, rule := range spec.GetRules() {
						if !opensPort(rule, lim.apiPort) {
							continue
						}
						if len(rule.GetFrom()) == 0 {
							admitted = append(admitted, "(any peer)")
						}
						for _, from := range rule.GetFrom() {
							if len(from.GetSource().GetPrincipals()) == 0 {
								admitted = append(admitted, "(any peer)")
							}
							admitted = append(admitted, from.GetSource().GetPrincipals()...)
						}
					}
				}
				if !slices.Equal(admitted, []string{waypoint}) {
					t.Errorf("ztunnel admits %v on port %s, want only the waypoint [%s]", admitted, lim.apiPort, waypoint)
				}
			})
		}
	}
}

// opensPort reports whether rule applies to port: a rule without operations
// or ports applies to every port.
func opensPort(rule *securityapi.Rule, port string) bool {
	if len(rule.GetTo()) == 0 {
		return true
	}
	for _, to := range rule.GetTo() {
		if ports := to.GetOperation().GetPorts(); len(ports) == 0 || slices.Contains(ports, port) {
			return true
		}
	}
	return false
}

// Loosen the ambient overlay on purpose, one rule at a time, and show the
// mesh check catches each: every L7 rule on the waypoint, every ztunnel
// rule, the waypoint binding, the XFCC annotation, the RequestAuthentication
// target and forwardOriginalToken, and what the apps are told to trust.
func TestAmbientCatchesLoosening(t *testing.T) {
	ns := siteNamespace(t, ".")
	lim := limits(t)
	amb := renderOverlay(t, ".", "ambient")
	want := wantEdgesFor(amb, ns)
	check := func(b *bundle) []string { return meshProblems(b, lim, want) }
	ingress := ingressPrincipal(amb)
	l7 := func(b *bundle, w string) *securityapi.Rule { return b.authzPolicies[w].Spec.Rules[0] }
	l4 := func(b *bundle, w string) *securityapi.Rule { return b.authzPolicies[w+"-ztunnel"].Spec.Rules[0] }
	env := func(b *bundle, w, name string) *corev1.EnvVar {
		c := b.deployments[w].Spec.Template.Spec.Containers
		for i := range c {
			for j := range c[i].Env {
				if c[i].Name == mainContainer && c[i].Env[j].Name == name {
					return &c[i].Env[j]
				}
			}
		}
		t.Fatalf("%s has no env %s", w, name)
		return nil
	}
	unexpected := func(from, to string) string { return "unexpected allowed call " + edge{from, to}.String() }
	missing := func(from, to string) string { return "missing allowed call " + edge{from, to}.String() }

	var tests []loosening
	for _, h := range domain.Chain() {
		w := h.ServiceAccount
		caller := ingress
		if !h.IsEdge() {
			c, _ := domain.HopOf(h.CalledBy)
			caller = principal(ns, c.ServiceAccount)
		}
		intruder := principal(ns, "intruder")
		tests = append(tests,
			// L7, on the waypoint.
			loosening{w + ": L7 admits another caller", unexpected(intruder, w), func(b *bundle) {
				src := l7(b, w).From[0].Source
				src.Principals = append(src.Principals, intruder)
			}},
			loosening{w + ": L7 admits the whole namespace", w + " rule 0: source", func(b *bundle) {
				l7(b, w).From[0].Source.Namespaces = []string{ns}
			}},
			loosening{w + ": L7 admits POST", w + " rule 0: want only", func(b *bundle) {
				op := l7(b, w).To[0].Operation
				op.Methods = append(op.Methods, "POST")
			}},
			loosening{w + ": L7 admits any path", w + " rule 0: want only", func(b *bundle) {
				l7(b, w).To[0].Operation.Paths = nil
			}},
			loosening{w + ": L7 needs no JWT", "requestPrincipals", func(b *bundle) {
				l7(b, w).From[0].Source.RequestPrincipals = nil
			}},
			loosening{w + ": L7 admin rule opens the API port", w + " rule 1", func(b *bundle) {
				op := b.authzPolicies[w].Spec.Rules[1].To[0].Operation
				op.Ports = append(op.Ports, lim.apiPort)
			}},
			loosening{w + ": L7 policy dropped", missing(caller, w), func(b *bundle) {
				delete(b.authzPolicies, w)
			}},
			loosening{w + ": L7 policy on the pods, where ztunnel cannot apply it", w + " rule 0: ztunnel enforces L4 only", func(b *bundle) {
				spec := &b.authzPolicies[w].Spec
				spec.TargetRefs = nil
				spec.Selector = b.authzPolicies[w+"-ztunnel"].Spec.Selector
			}},
			// L4, in ztunnel.
			loosening{w + ": ztunnel admits the caller straight to the pod", "straight to the pod", func(b *bundle) {
				src := l4(b, w).From[0].Source
				src.Principals = append(src.Principals, caller)
			}},
			loosening{w + ": ztunnel admits anyone on the API port", w + "-ztunnel rule 0", func(b *bundle) {
				l4(b, w).From = nil
			}},
			loosening{w + ": ztunnel admits the waypoint on every port", w + "-ztunnel rule 0: ports", func(b *bundle) {
				l4(b, w).To = []*securityapi.Rule_To{{Operation: &securityapi.Operation{}}}
			}},
			loosening{w + ": ztunnel rule with L7 fields", "ztunnel enforces L4 only", func(b *bundle) {
				l4(b, w).To[0].Operation.Methods = []string{"GET"}
			}},
			loosening{w + ": ztunnel admin rule opens the API port", w + "-ztunnel rule 1: ports", func(b *bundle) {
				op := b.authzPolicies[w+"-ztunnel"].Spec.Rules[1].To[0].Operation
				op.Ports = append(op.Ports, lim.apiPort)
			}},
			loosening{w + ": ztunnel admin rule admits every mesh peer", w + "-ztunnel rule 1: the admin port admits []", func(b *bundle) {
				b.authzPolicies[w+"-ztunnel"].Spec.Rules[1].From = nil
			}},
			loosening{w + ": ztunnel policy dropped", "does not admit the waypoint", func(b *bundle) {
				delete(b.authzPolicies, w+"-ztunnel")
			}},
			loosening{w + ": ztunnel admits another workload instead of the waypoint", unexpected(intruder, w), func(b *bundle) {
				l4(b, w).From[0].Source.Principals = []string{intruder}
			}},
			// The waypoint binding and what the app trusts.
			loosening{w + ": Service not bound to the waypoint", "no " + useWaypointLabel + " label", func(b *bundle) {
				delete(b.services[w].Labels, useWaypointLabel)
			}},
			loosening{w + ": Service bound to a waypoint nobody deploys", "which this overlay does not deploy", func(b *bundle) {
				b.services[w].Labels[useWaypointLabel] = "elsewhere"
			}},
			loosening{w + ": app trusts its own identity in By=", w + ": XFCC_TRUSTED_PROXIES", func(b *bundle) {
				env(b, w, "XFCC_TRUSTED_PROXIES").Value = "spiffe://" + principal(ns, w)
			}},
			loosening{w + ": app trusts the waypoint and itself", w + ": XFCC_TRUSTED_PROXIES", func(b *bundle) {
				e := env(b, w, "XFCC_TRUSTED_PROXIES")
				e.Value += ",spiffe://" + principal(ns, w)
			}},
		)
	}
	tests = append(tests,
		loosening{"ingress traffic skips service-a's waypoint", missing(ingress, "service-a"), func(b *bundle) {
			delete(b.services["service-a"].Labels, ingressUsesWaypoint)
		}},
		loosening{"service-a's app admits the classic ingress gateway", "service-a: the app admits", func(b *bundle) {
			env(b, "service-a", "ALLOWED_PEERS").Value = "spiffe://" + ingressGateway
		}},
		loosening{"the waypoint writes no XFCC", xfccAnnotation, func(b *bundle) {
			delete(b.k8sGateways["waypoint"].Annotations, xfccAnnotation)
		}},
		loosening{"the waypoint's XFCC annotation is false", xfccAnnotation, func(b *bundle) {
			b.k8sGateways["waypoint"].Annotations[xfccAnnotation] = "false"
		}},
		loosening{"the waypoint is an ingress", "gatewayClassName", func(b *bundle) {
			b.k8sGateways["waypoint"].Spec.GatewayClassName = ingressClass
		}},
		loosening{"the waypoint listens for HTTP", "HBONE", func(b *bundle) {
			b.k8sGateways["waypoint"].Spec.Listeners[0].Protocol = "HTTP"
		}},
		loosening{"the waypoint serves workloads only", "waypoint-for", func(b *bundle) {
			b.k8sGateways["waypoint"].Labels["istio.io/waypoint-for"] = "workload"
		}},
		loosening{"RequestAuthentication targets no waypoint", "want only the waypoint", func(b *bundle) {
			b.requestAuths["auth0-jwt"].Spec.TargetRefs = nil
		}},
		loosening{"RequestAuthentication selects pods", "want only the waypoint", func(b *bundle) {
			ra := &b.requestAuths["auth0-jwt"].Spec
			ra.TargetRefs = nil
			ra.Selector = b.authzPolicies["service-a-ztunnel"].Spec.Selector
		}},
		loosening{"RequestAuthentication targets the ingress", "want only the waypoint", func(b *bundle) {
			b.requestAuths["auth0-jwt"].Spec.TargetRefs[0].Name = "trustchain-ingress"
		}},
		loosening{"RequestAuthentication strips the token", "forwardOriginalToken", func(b *bundle) {
			b.requestAuths["auth0-jwt"].Spec.JwtRules[0].ForwardOriginalToken = false
		}},
		loosening{"allow-nothing allows everything", "allow-nothing", func(b *bundle) {
			b.authzPolicies["allow-nothing"].Spec.Rules = []*securityapi.Rule{{}}
		}},
		loosening{"the namespace leaves ambient mode", "only a waypoint applies that", func(b *bundle) {
			for _, n := range b.namespaceObjects {
				delete(n.Labels, dataplaneModeLabel)
			}
		}},
		loosening{"a waypoint-wide ALLOW", "targets Gateway waypoint", func(b *bundle) {
			p := b.authzPolicies["allow-nothing"].DeepCopy()
			p.Name = "waypoint-wide"
			p.Spec.TargetRefs = []*typeapi.PolicyTargetReference{{Group: "gateway.networking.k8s.io", Kind: "Gateway", Name: "waypoint"}}
			p.Spec.Rules = []*securityapi.Rule{{}}
			b.authzPolicies[p.Name] = p
		}},
	)
	checkLoosenings(t, amb, check, tests)
}
