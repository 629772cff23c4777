package deploy_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	networkingapi "istio.io/api/networking/v1alpha3"
	securityapi "istio.io/api/security/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trustchain/trustchain/adapters/httpapi/wire"
	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/deploy"
	"github.com/trustchain/trustchain/domain"
)

// hops indexes the chain's one table by workload: each hop's service account
// names its Deployment, Service and overlay.
func hops() map[string]domain.Hop {
	out := map[string]domain.Hop{}
	for _, h := range domain.Chain() {
		out[h.ServiceAccount] = h
	}
	return out
}

// wantWorkloads is what each deployable overlay must contain. A new overlay
// must be added here, so none goes unchecked.
var wantWorkloads = map[string][]string{
	"service-a": {"service-a"},
	"service-b": {"service-b"},
	"service-c": {"service-c"},
	"dev":       {"service-a", "service-b", "service-c"},
	"ambient":   {"service-a", "service-b", "service-c"},
}

const (
	mainContainer   = "trustchain"
	oidcConfigMap   = "trustchain-oidc"
	mysqlSecret     = "trustchain-mysql"
	publicHost      = "service-a.example.com"
	ingressGateway  = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
	defaultDrainFor = 15 * time.Second // the binary's SHUTDOWN_TIMEOUT default
)

func port(tb testing.TB, addr string) int32 {
	tb.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		tb.Fatalf("address %q: %v", addr, err)
	}
	return int32(n)
}

// The ports the binary listens on by default, from its own constants.
func apiPort(tb testing.TB) int32   { return port(tb, app.DefaultListenAddr) }
func adminPort(tb testing.TB) int32 { return port(tb, app.DefaultAdminListenAddr) }

// siteNamespace is the one place the namespace is set.
func siteNamespace(tb testing.TB, root string) string {
	tb.Helper()
	ns, _ := readSiteNamespace(tb, root)
	return ns
}

func container(tb testing.TB, spec corev1.PodSpec, name string) corev1.Container {
	tb.Helper()
	for _, c := range spec.Containers {
		if c.Name == name {
			return c
		}
	}
	tb.Fatalf("no container %q", name)
	return corev1.Container{}
}

func allContainers(spec corev1.PodSpec) []corev1.Container {
	return append(slices.Clone(spec.InitContainers), spec.Containers...)
}

func env(c corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

// containerPort resolves a probe's or Service's port, named or numbered.
func containerPort(tb testing.TB, c corev1.Container, p intstr.IntOrString) int32 {
	tb.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	tb.Fatalf("container %s has no port named %q", c.Name, p.StrVal)
	return 0
}

func TestEveryOverlayIsChecked(t *testing.T) {
	names, err := deploy.Overlays(".")
	if err != nil {
		t.Fatal(err)
	}
	if want := sortedKeys(wantWorkloads); !slices.Equal(names, want) {
		t.Fatalf("overlays = %v, the tests know %v: add the new one to wantWorkloads", names, want)
	}
}

func TestOverlaysRenderIntoOneNamespace(t *testing.T) {
	ns := siteNamespace(t, ".")
	for _, b := range renderAll(t, ".") {
		t.Run(b.overlay, func(t *testing.T) {
			if !reflect.DeepEqual(b.namespaces, map[string]bool{ns: true}) {
				t.Errorf("namespaces %v, want every object in %q", sortedKeys(b.namespaces), ns)
			}
			for name := range b.namespaceObjects {
				if name != ns {
					t.Errorf("Namespace %s, want only %s", name, ns)
				}
			}
			if got, want := sortedKeys(b.deployments), wantWorkloads[b.overlay]; !slices.Equal(got, want) {
				t.Errorf("deployments %v, want %v", got, want)
			}
		})
	}
}

func TestSameImageInEveryRole(t *testing.T) {
	images := map[string]bool{}
	for _, b := range renderAll(t, ".") {
		for _, d := range b.deployments {
			for _, c := range allContainers(d.Spec.Template.Spec) {
				images[c.Image] = true
			}
		}
	}
	if len(images) != 1 {
		t.Fatalf("images %v, want one image for every role and its init containers", sortedKeys(images))
	}
	for img := range images {
		if !strings.Contains(img, "/") || !strings.ContainsAny(img, ":@") {
			t.Errorf("image %q: want a registry path with a tag or digest (the placeholder was not replaced?)", img)
		}
	}
}

func TestEachRoleHasItsOwnIdentity(t *testing.T) {
	for _, b := range renderAll(t, ".") {
		ns := siteNamespace(t, ".")
		for name, d := range b.deployments {
			t.Run(b.overlay+"/"+name, func(t *testing.T) {
				hop, ok := hops()[name]
				if !ok {
					t.Fatalf("unknown workload %s", name)
				}
				role := string(hop.Role)
				pod := d.Spec.Template
				if got := pod.Labels["app"]; got != name {
					t.Errorf("pod label app=%q, want %q", got, name)
				}
				if pod.Labels["version"] == "" {
					t.Error("pod has no version label")
				}
				if !reflect.DeepEqual(d.Spec.Selector.MatchLabels, map[string]string{"app": name}) {
					t.Errorf("selector %v, want app=%s", d.Spec.Selector.MatchLabels, name)
				}
				if pod.Spec.ServiceAccountName != name {
					t.Errorf("serviceAccountName %q, want %q", pod.Spec.ServiceAccountName, name)
				}
				if _, ok := b.serviceAccounts[name]; !ok {
					t.Errorf("no ServiceAccount %s", name)
				}
				c := container(t, pod.Spec, mainContainer)
				if want := []string{"--role=" + role}; !slices.Equal(c.Args, want) {
					t.Errorf("args %v, want %v", c.Args, want)
				}
				if len(c.Command) != 0 {
					t.Errorf("command %v overrides the image entrypoint", c.Command)
				}

				svc, ok := b.services[name]
				if !ok {
					t.Fatalf("no Service %s", name)
				}
				if !reflect.DeepEqual(svc.Spec.Selector, map[string]string{"app": name}) {
					t.Errorf("Service selector %v, want app=%s", svc.Spec.Selector, name)
				}
				pdb, ok := b.pdbs[name]
				if !ok || !reflect.DeepEqual(pdb.Spec.Selector.MatchLabels, map[string]string{"app": name}) {
					t.Errorf("no PodDisruptionBudget selecting app=%s", name)
				}
				hpa, ok := b.hpas[name]
				if !ok || hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != name {
					t.Errorf("no HorizontalPodAutoscaler scaling Deployment %s", name)
				} else if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas {
					t.Errorf("HPA replicas min %v max %d: want at least 2", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
				}
				if d.Spec.Replicas != nil {
					t.Errorf("replicas set to %d: the HPA owns it", *d.Spec.Replicas)
				}

				// Who it calls.
				up, hasUp := env(c, "UPSTREAM_URL")
				switch next, ok := domain.HopOf(hop.Calls); {
				case ok:
					want := "http://" + next.ServiceAccount + "." + ns + ".svc.cluster.local:" + strconv.Itoa(int(apiPort(t)))
					if !hasUp || up.Value != want {
						t.Errorf("UPSTREAM_URL %q, want %q", up.Value, want)
					}
				case hasUp:
					t.Errorf("UPSTREAM_URL %q set on %s, which calls no service", up.Value, name)
				}

				// Peer identity and where it runs, as the binary expects.
				if e, _ := env(c, "PEER_AUTH"); e.Value != "xfcc" {
					t.Errorf("PEER_AUTH %q, want xfcc", e.Value)
				}
				if e, _ := env(c, "POD_NAMESPACE"); e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
					t.Error("POD_NAMESPACE must come from the downward API metadata.namespace")
				}
				if e, _ := env(c, "SERVICE_ACCOUNT"); e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "spec.serviceAccountName" {
					t.Error("SERVICE_ACCOUNT must come from the downward API spec.serviceAccountName")
				}
				if !slices.ContainsFunc(c.EnvFrom, func(s corev1.EnvFromSource) bool {
					return s.ConfigMapRef != nil && b.configMaps[s.ConfigMapRef.Name] != nil &&
						strings.HasPrefix(s.ConfigMapRef.Name, oidcConfigMap)
				}) {
					t.Errorf("no envFrom of the %s ConfigMap in this overlay", oidcConfigMap)
				}

				// Only service-b touches MySQL, and migrates before serving.
				_, hasDSN := env(c, "MYSQL_DSN")
				inits := pod.Spec.InitContainers
				if name != "service-b" {
					if hasDSN || len(inits) != 0 {
						t.Errorf("%s has MYSQL_DSN or init containers; only service-b uses MySQL", name)
					}
					return
				}
				if !hasDSN {
					t.Error("service-b has no MYSQL_DSN")
				}
				if len(inits) == 0 || inits[0].Name != "migrate" || !slices.Equal(inits[0].Args, []string{"migrate", "up"}) {
					t.Fatalf("service-b's first init container must run `migrate up`, got %+v", inits)
				}
				if inits[0].Image != c.Image {
					t.Errorf("migrate image %q, serving image %q: want the same", inits[0].Image, c.Image)
				}
				if _, ok := env(inits[0], "MYSQL_DSN"); !ok {
					t.Error("migrate has no MYSQL_DSN")
				}
				if b.overlay == "dev" {
					if len(inits) != 2 || inits[1].Name != "seed" || !slices.Equal(inits[1].Args, []string{"seed"}) {
						t.Errorf("dev: want `seed` right after `migrate up`, got %d init containers", len(inits))
					}
				}
			})
		}
	}
}

func TestProbesAndPortsAreOnesTheBinaryServes(t *testing.T) {
	api, admin := apiPort(t), adminPort(t)
	for _, b := range renderAll(t, ".") {
		for name, d := range b.deployments {
			t.Run(b.overlay+"/"+name, func(t *testing.T) {
				c := container(t, d.Spec.Template.Spec, mainContainer)
				ports := map[string]int32{}
				for _, p := range c.Ports {
					ports[p.Name] = p.ContainerPort
				}
				if want := map[string]int32{"http": api, "http-admin": admin}; !reflect.DeepEqual(ports, want) {
					t.Errorf("container ports %v, want %v", ports, want)
				}
				for envName, want := range map[string]string{"LISTEN_ADDR": app.DefaultListenAddr, "ADMIN_LISTEN_ADDR": app.DefaultAdminListenAddr} {
					if e, ok := env(c, envName); ok && e.Value != want {
						t.Errorf("%s=%q, but the ports above assume %q", envName, e.Value, want)
					}
				}
				probes := []struct {
					kind  string
					probe *corev1.Probe
					path  string
				}{
					{"liveness", c.LivenessProbe, wire.HealthzPath},
					{"readiness", c.ReadinessProbe, wire.ReadyzPath},
				}
				if c.StartupProbe != nil {
					probes = append(probes, struct {
						kind  string
						probe *corev1.Probe
						path  string
					}{"startup", c.StartupProbe, wire.HealthzPath})
				}
				for _, p := range probes {
					if p.probe == nil || p.probe.HTTPGet == nil {
						t.Errorf("%s probe: want an HTTP GET", p.kind)
						continue
					}
					if p.probe.HTTPGet.Path != p.path {
						t.Errorf("%s probe path %q, want %q", p.kind, p.probe.HTTPGet.Path, p.path)
					}
					if got := containerPort(t, c, p.probe.HTTPGet.Port); got != admin {
						t.Errorf("%s probe port %d, want the admin port %d", p.kind, got, admin)
					}
				}

				ann := d.Spec.Template.Annotations
				if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != strconv.Itoa(int(admin)) || ann["prometheus.io/path"] != wire.MetricsPath {
					t.Errorf("prometheus annotations %v, want scrape=true port=%d path=%s", ann, admin, wire.MetricsPath)
				}

				svc := b.services[name]
				if svc == nil {
					t.Fatalf("no Service %s", name)
				}
				svcPorts := map[string]int32{}
				for _, p := range svc.Spec.Ports {
					svcPorts[p.Name] = containerPort(t, c, p.TargetPort)
					if p.Port != svcPorts[p.Name] {
						t.Errorf("Service port %s: %d -> %d; keep them equal, the policies and URLs use one number", p.Name, p.Port, svcPorts[p.Name])
					}
				}
				if svcPorts["http"] != api {
					t.Errorf("Service port http targets %d, want the API port %d", svcPorts["http"], api)
				}
				if p, ok := svcPorts["http-admin"]; ok && p != admin {
					t.Errorf("Service port http-admin targets %d, want the admin port %d", p, admin)
				}
			})
		}
	}
}

func TestShutdownOutlastsTheDrain(t *testing.T) {
	for _, b := range renderAll(t, ".") {
		for name, d := range b.deployments {
			t.Run(b.overlay+"/"+name, func(t *testing.T) {
				pod := d.Spec.Template
				// With a sidecar the app must wait for it; in ambient mode
				// istio-cni redirects the pod's traffic before any container
				// starts (TestAmbientLeavesNoSidecarBehind checks no sidecar
				// setting is left).
				if !isAmbient(b) {
					var cfg struct {
						HoldApplicationUntilProxyStarts bool `json:"holdApplicationUntilProxyStarts"`
					}
					if err := json.Unmarshal([]byte(pod.Annotations["proxy.istio.io/config"]), &cfg); err != nil || !cfg.HoldApplicationUntilProxyStarts {
						t.Errorf("proxy.istio.io/config %q: want holdApplicationUntilProxyStarts true (%v)", pod.Annotations["proxy.istio.io/config"], err)
					}
				}
				c := container(t, pod.Spec, mainContainer)
				drain := defaultDrainFor
				if e, ok := env(c, "SHUTDOWN_TIMEOUT"); ok {
					var err error
					if drain, err = time.ParseDuration(e.Value); err != nil {
						t.Fatalf("SHUTDOWN_TIMEOUT %q: %v", e.Value, err)
					}
				}
				var preStop time.Duration
				if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
					preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
				}
				if pod.Spec.TerminationGracePeriodSeconds == nil {
					t.Fatal("no terminationGracePeriodSeconds")
				}
				if grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second; grace <= preStop+drain {
					t.Errorf("terminationGracePeriodSeconds %v must exceed preStop %v + drain %v", grace, preStop, drain)
				}
				if !slices.ContainsFunc(pod.Spec.TopologySpreadConstraints, func(tsc corev1.TopologySpreadConstraint) bool {
					return tsc.TopologyKey == "kubernetes.io/hostname" && tsc.LabelSelector != nil &&
						reflect.DeepEqual(tsc.LabelSelector.MatchLabels, map[string]string{"app": name})
				}) {
					t.Error("no topologySpreadConstraint across nodes for this workload's pods")
				}
			})
		}
	}
}

func podTemplates(b *bundle) map[string]corev1.PodTemplateSpec {
	out := map[string]corev1.PodTemplateSpec{}
	for n, d := range b.deployments {
		out["Deployment/"+n] = d.Spec.Template
	}
	for n, s := range b.statefulSets {
		out["StatefulSet/"+n] = s.Spec.Template
	}
	return out
}

func TestEveryContainerIsHardened(t *testing.T) {
	for _, b := range renderAll(t, ".") {
		for name, pod := range podTemplates(b) {
			t.Run(b.overlay+"/"+name, func(t *testing.T) {
				psc := pod.Spec.SecurityContext
				if psc == nil {
					psc = &corev1.PodSecurityContext{}
				}
				for _, c := range allContainers(pod.Spec) {
					sc := c.SecurityContext
					if sc == nil {
						t.Errorf("%s: no securityContext", c.Name)
						continue
					}
					nonRoot := sc.RunAsNonRoot
					if nonRoot == nil {
						nonRoot = psc.RunAsNonRoot
					}
					if nonRoot == nil || !*nonRoot {
						t.Errorf("%s: runAsNonRoot is not true", c.Name)
					}
					if uid := sc.RunAsUser; (uid != nil && *uid == 0) || (uid == nil && psc.RunAsUser != nil && *psc.RunAsUser == 0) {
						t.Errorf("%s: runs as uid 0", c.Name)
					}
					if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
						t.Errorf("%s: readOnlyRootFilesystem is not true", c.Name)
					}
					if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
						t.Errorf("%s: allowPrivilegeEscalation is not false", c.Name)
					}
					if sc.Privileged != nil && *sc.Privileged {
						t.Errorf("%s: privileged", c.Name)
					}
					if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) != 0 {
						t.Errorf("%s: capabilities %+v, want drop ALL and add none", c.Name, sc.Capabilities)
					}
					seccomp := sc.SeccompProfile
					if seccomp == nil {
						seccomp = psc.SeccompProfile
					}
					if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
						t.Errorf("%s: seccomp profile is not RuntimeDefault", c.Name)
					}
					for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
						if _, ok := c.Resources.Requests[res]; !ok {
							t.Errorf("%s: no %s request", c.Name, res)
						}
						if _, ok := c.Resources.Limits[res]; !ok {
							t.Errorf("%s: no %s limit", c.Name, res)
						}
					}
				}
			})
		}
	}
}

var (
	// A go-sql-driver DSN, or a URL with a password in it.
	dsnLike = regexp.MustCompile(`@tcp\(|@unix\(|://[^/\s:@]+:[^/\s@]+@`)
	// Env names that must only ever come from a Secret.
	secretName = regexp.MustCompile(`(?i)dsn|password|passwd|secret|token|private|credential`)
)

func TestNoSecretInPlainText(t *testing.T) {
	for _, b := range renderAll(t, ".") {
		t.Run(b.overlay, func(t *testing.T) {
			for name, pod := range podTemplates(b) {
				for _, c := range allContainers(pod.Spec) {
					for _, e := range c.Env {
						where := name + "/" + c.Name + " env " + e.Name
						fromSecret := e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
						if secretName.MatchString(e.Name) && !fromSecret {
							t.Errorf("%s: want it from a Secret via secretKeyRef", where)
						}
						if dsnLike.MatchString(e.Value) || strings.Contains(strings.ToLower(e.Value), "password") {
							t.Errorf("%s: value looks like a DSN or password", where)
						}
					}
					for _, a := range append(slices.Clone(c.Command), c.Args...) {
						if dsnLike.MatchString(a) || strings.Contains(a, "--mysql-dsn") {
							t.Errorf("%s/%s: argument %q carries a DSN", name, c.Name, a)
						}
					}
				}
			}
			for name, cm := range b.configMaps {
				for k, v := range cm.Data {
					if secretName.MatchString(k) || dsnLike.MatchString(v) {
						t.Errorf("ConfigMap %s key %s holds a secret", name, k)
					}
				}
			}
			// Only the dev overlay ships a Secret, marked as such; real
			// overlays expect the operator to create it.
			for name, s := range b.secrets {
				if b.overlay != "dev" || name != mysqlSecret || s.Annotations["trustchain.io/dev-only"] != "true" {
					t.Errorf("Secret %s rendered by %s: only the dev overlay may ship one, annotated trustchain.io/dev-only", name, b.overlay)
				}
			}
		})
	}
}

func TestMutualTLSIsStrictEverywhere(t *testing.T) {
	ns := siteNamespace(t, ".")
	for _, b := range renderAll(t, ".") {
		t.Run(b.overlay, func(t *testing.T) {
			if len(b.peerAuths) != 1 {
				t.Fatalf("%d PeerAuthentications, want exactly the namespace-wide one", len(b.peerAuths))
			}
			for name, pa := range b.peerAuths {
				if pa.Spec.GetSelector() != nil || pa.Spec.GetMtls().GetMode() != securityapi.PeerAuthentication_MutualTLS_STRICT || len(pa.Spec.GetPortLevelMtls()) != 0 {
					t.Errorf("PeerAuthentication %s: want namespace-wide STRICT with no port exceptions, got %v", name, &pa.Spec)
				}
			}
			for workload := range hops() {
				host := workload + "." + ns + ".svc.cluster.local"
				var dr *networkingapi.DestinationRule
				for _, d := range b.destinationRules {
					if d.Spec.GetHost() == host {
						dr = &d.Spec
					}
				}
				if dr == nil {
					t.Errorf("no DestinationRule for %s", host)
					continue
				}
				tp := dr.GetTrafficPolicy()
				if tp.GetTls().GetMode() != networkingapi.ClientTLSSettings_ISTIO_MUTUAL {
					t.Errorf("%s: tls mode %v, want ISTIO_MUTUAL", host, tp.GetTls().GetMode())
				}
				cp := tp.GetConnectionPool()
				if cp.GetTcp().GetMaxConnections() <= 0 || cp.GetHttp().GetHttp1MaxPendingRequests() <= 0 || cp.GetHttp().GetHttp2MaxRequests() <= 0 {
					t.Errorf("%s: connection pool %v: want TCP and HTTP limits", host, cp)
				}
				od := tp.GetOutlierDetection()
				if od.GetConsecutive_5XxErrors().GetValue() == 0 || od.GetBaseEjectionTime() == nil || od.GetInterval() == nil {
					t.Errorf("%s: outlier detection %v: want consecutive 5xx, interval and ejection time", host, od)
				}
			}
		})
	}
}

func TestRequestAuthenticationMatchesTheApp(t *testing.T) {
	for _, b := range renderAll(t, ".") {
		t.Run(b.overlay, func(t *testing.T) {
			for _, p := range requestAuthProblems(b) {
				t.Error(p)
			}
		})
	}
}

// requestAuthProblems checks the one RequestAuthentication: it trusts the
// same issuer and audience as the app, keeps the token for the app, and
// applies where the policies require a JWT: on every trustchain sidecar
// (and no other pod), or in ambient mode on the waypoint, which ignores
// selector policies.
func requestAuthProblems(b *bundle) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	var cm *corev1.ConfigMap
	for name, c := range b.configMaps {
		if strings.HasPrefix(name, oidcConfigMap) {
			cm = c
		}
	}
	if cm == nil {
		return []string{"no " + oidcConfigMap + " ConfigMap"}
	}
	issuer, audience := cm.Data["OIDC_ISSUER"], cm.Data["OIDC_AUDIENCE"]
	if u, err := url.Parse(issuer); err != nil || u.Scheme != "https" || u.Host == "" || !strings.HasSuffix(issuer, "/") {
		bad("OIDC_ISSUER %q: want an https URL ending in / (Auth0's form)", issuer)
	}
	if audience == "" || cm.Data["REQUIRED_SCOPE"] == "" {
		bad("ConfigMap %v: want OIDC_AUDIENCE and REQUIRED_SCOPE", cm.Data)
	}
	if len(b.requestAuths) != 1 {
		bad("%d RequestAuthentications, want 1", len(b.requestAuths))
		return problems
	}
	for name, ra := range b.requestAuths {
		if isAmbient(b) {
			waypoints := map[string]bool{}
			for w := range b.deployments {
				if svc, ok := b.services[w]; ok {
					waypoints[svc.Labels[useWaypointLabel]] = true
				}
			}
			refs := ra.Spec.GetTargetRefs()
			if ra.Spec.GetSelector() != nil || len(refs) != 1 || len(waypoints) != 1 ||
				refs[0].GetGroup() != gatewayv1.GroupName || refs[0].GetKind() != "Gateway" || !waypoints[refs[0].GetName()] {
				bad("RequestAuthentication %s: selector %v, targetRefs %v: want only the waypoint of %v (a waypoint ignores selectors, so no JWT would be validated and requestPrincipals would never match)",
					name, ra.Spec.GetSelector(), refs, sortedKeys(waypoints))
			}
		} else {
			if len(ra.Spec.GetTargetRefs()) != 0 || ra.Spec.GetTargetRef() != nil {
				bad("RequestAuthentication %s: targetRefs, but sidecars apply selector policies", name)
			}
			sel := ra.Spec.GetSelector().GetMatchLabels()
			for d, dep := range b.deployments {
				if !selects(sel, dep.Spec.Template.Labels) {
					bad("RequestAuthentication selector %v misses %s", sel, d)
				}
			}
			for st, s := range b.statefulSets {
				if selects(sel, s.Spec.Template.Labels) {
					bad("RequestAuthentication selector %v also selects %s", sel, st)
				}
			}
		}
		rules := ra.Spec.GetJwtRules()
		if len(rules) != 1 {
			bad("%d jwtRules, want 1", len(rules))
			continue
		}
		r := rules[0]
		if r.GetIssuer() != issuer {
			bad("issuer %q, ConfigMap says %q", r.GetIssuer(), issuer)
		}
		if want := issuer + ".well-known/jwks.json"; r.GetJwksUri() != want {
			bad("jwksUri %q, want %q", r.GetJwksUri(), want)
		}
		if !slices.Equal(r.GetAudiences(), []string{audience}) {
			bad("audiences %v, want [%s]", r.GetAudiences(), audience)
		}
		if !r.GetForwardOriginalToken() {
			bad("forwardOriginalToken is not true: the proxy would strip the token before the app checks it")
		}
	}
	return problems
}

// appPeerProblems checks what each app is told about its callers against
// the mesh: PEER_AUTH=xfcc, the callers of the wanted graph in ALLOWED_PEERS
// (or the app's default for its role: the hop before it, or for the edge
// the classic ingress gateway), and in XFCC_TRUSTED_PROXIES the proxy that
// writes the header: unset (the app's own identity, its sidecar's) with
// sidecars, the waypoint of its Service in ambient mode.
func appPeerProblems(b *bundle, want []edge) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for _, name := range sortedKeys(b.deployments) {
		d := b.deployments[name]
		ns := d.Namespace
		var c *corev1.Container
		for i := range d.Spec.Template.Spec.Containers {
			if d.Spec.Template.Spec.Containers[i].Name == mainContainer {
				c = &d.Spec.Template.Spec.Containers[i]
			}
		}
		hop, ok := hops()[name]
		if c == nil || !ok {
			bad("%s: no %s container or no hop of the chain", name, mainContainer)
			continue
		}
		if e, _ := env(*c, "PEER_AUTH"); e.Value != "xfcc" {
			bad("%s: PEER_AUTH %q, want xfcc", name, e.Value)
		}

		var callers []string
		for _, e := range want {
			if e.to == name {
				callers = append(callers, "spiffe://"+e.from)
			}
		}
		allowed := []string{"spiffe://" + ingressGateway}
		if !hop.IsEdge() {
			caller, _ := domain.HopOf(hop.CalledBy)
			allowed = []string{"spiffe://" + principal(ns, caller.ServiceAccount)}
		}
		if e, ok := env(*c, "ALLOWED_PEERS"); ok {
			allowed = strings.Split(e.Value, ",")
			if e.ValueFrom != nil {
				bad("%s: ALLOWED_PEERS from %v: want a value the checks can read", name, e.ValueFrom)
			}
		}
		slices.Sort(allowed)
		slices.Sort(callers)
		if !slices.Equal(allowed, callers) {
			bad("%s: the app admits %v, the mesh %v", name, allowed, callers)
		}

		proxies := []string{"spiffe://" + principal(ns, name)}
		if e, ok := env(*c, "XFCC_TRUSTED_PROXIES"); ok {
			proxies = strings.Split(e.Value, ",")
		}
		wantProxy := "spiffe://" + principal(ns, name)
		if isAmbient(b) {
			wantProxy = "(no waypoint)"
			if gw, ok := b.k8sGateways[b.services[name].Labels[useWaypointLabel]]; ok {
				wantProxy = "spiffe://" + principal(gw.Namespace, istioServiceAccount(gw))
			}
		}
		if !slices.Equal(proxies, []string{wantProxy}) {
			bad("%s: XFCC_TRUSTED_PROXIES %v, want [%s], the proxy that writes its XFCC", name, proxies, wantProxy)
		}
	}
	return problems
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return true
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
