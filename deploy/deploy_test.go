package deploy_test

import (
	"encoding/json"
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

	"github.com/trustchain/trustchain/adapters/httpapi"
	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/deploy"
)

// roles maps each workload to the --role it must run.
var roles = map[string]string{"service-a": "a", "service-b": "b", "service-c": "c"}

// wantWorkloads is what each deployable overlay must contain. A new overlay
// must be added here, so none goes unchecked.
var wantWorkloads = map[string][]string{
	"service-a": {"service-a"},
	"service-b": {"service-b"},
	"service-c": {"service-c"},
	"dev":       {"service-a", "service-b", "service-c"},
}

// upstreams is who calls whom: a and c are told their next hop.
var upstreams = map[string]string{"service-a": "service-c", "service-c": "service-b"}

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
				role, ok := roles[name]
				if !ok {
					t.Fatalf("unknown workload %s", name)
				}
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
				switch next, ok := upstreams[name]; {
				case ok:
					want := "http://" + next + "." + ns + ".svc.cluster.local:" + strconv.Itoa(int(apiPort(t)))
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
					{"liveness", c.LivenessProbe, httpapi.HealthzPath},
					{"readiness", c.ReadinessProbe, httpapi.ReadyzPath},
				}
				if c.StartupProbe != nil {
					probes = append(probes, struct {
						kind  string
						probe *corev1.Probe
						path  string
					}{"startup", c.StartupProbe, httpapi.HealthzPath})
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
				if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != strconv.Itoa(int(admin)) || ann["prometheus.io/path"] != httpapi.MetricsPath {
					t.Errorf("prometheus annotations %v, want scrape=true port=%d path=%s", ann, admin, httpapi.MetricsPath)
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
				var cfg struct {
					HoldApplicationUntilProxyStarts bool `json:"holdApplicationUntilProxyStarts"`
				}
				if err := json.Unmarshal([]byte(pod.Annotations["proxy.istio.io/config"]), &cfg); err != nil || !cfg.HoldApplicationUntilProxyStarts {
					t.Errorf("proxy.istio.io/config %q: want holdApplicationUntilProxyStarts true (%v)", pod.Annotations["proxy.istio.io/config"], err)
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
			for workload := range roles {
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
			var cm *corev1.ConfigMap
			for name, c := range b.configMaps {
				if strings.HasPrefix(name, oidcConfigMap) {
					cm = c
				}
			}
			if cm == nil {
				t.Fatalf("no %s ConfigMap", oidcConfigMap)
			}
			issuer, audience := cm.Data["OIDC_ISSUER"], cm.Data["OIDC_AUDIENCE"]
			if u, err := url.Parse(issuer); err != nil || u.Scheme != "https" || u.Host == "" || !strings.HasSuffix(issuer, "/") {
				t.Errorf("OIDC_ISSUER %q: want an https URL ending in / (Auth0's form)", issuer)
			}
			if audience == "" || cm.Data["REQUIRED_SCOPE"] == "" {
				t.Errorf("ConfigMap %v: want OIDC_AUDIENCE and REQUIRED_SCOPE", cm.Data)
			}
			if len(b.requestAuths) != 1 {
				t.Fatalf("%d RequestAuthentications, want 1", len(b.requestAuths))
			}
			for _, ra := range b.requestAuths {
				sel := ra.Spec.GetSelector().GetMatchLabels()
				for name, d := range b.deployments {
					if !selects(sel, d.Spec.Template.Labels) {
						t.Errorf("RequestAuthentication selector %v misses %s", sel, name)
					}
				}
				for name, s := range b.statefulSets {
					if selects(sel, s.Spec.Template.Labels) {
						t.Errorf("RequestAuthentication selector %v also selects %s", sel, name)
					}
				}
				rules := ra.Spec.GetJwtRules()
				if len(rules) != 1 {
					t.Fatalf("%d jwtRules, want 1", len(rules))
				}
				r := rules[0]
				if r.GetIssuer() != issuer {
					t.Errorf("issuer %q, ConfigMap says %q", r.GetIssuer(), issuer)
				}
				if want := issuer + ".well-known/jwks.json"; r.GetJwksUri() != want {
					t.Errorf("jwksUri %q, want %q", r.GetJwksUri(), want)
				}
				if !slices.Equal(r.GetAudiences(), []string{audience}) {
					t.Errorf("audiences %v, want [%s]", r.GetAudiences(), audience)
				}
				if !r.GetForwardOriginalToken() {
					t.Error("forwardOriginalToken is not true: the sidecar would strip the token before the app checks it")
				}
			}
		})
	}
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

func TestOnlyServiceAIsExposed(t *testing.T) {
	ns := siteNamespace(t, ".")
	for _, b := range renderAll(t, ".") {
		t.Run(b.overlay, func(t *testing.T) {
			if len(b.gateways) != 1 || len(b.virtualServices) != 1 {
				t.Fatalf("%d Gateways, %d VirtualServices: want one of each", len(b.gateways), len(b.virtualServices))
			}
			var gwName string
			for name, gw := range b.gateways {
				gwName = name
				var https bool
				for _, s := range gw.Spec.GetServers() {
					for _, h := range s.GetHosts() {
						if h != "./"+publicHost && h != ns+"/"+publicHost {
							t.Errorf("Gateway host %q: want %s bound to this namespace", h, publicHost)
						}
					}
					switch s.GetPort().GetProtocol() {
					case "HTTPS":
						https = s.GetTls().GetMode() == networkingapi.ServerTLSSettings_SIMPLE && s.GetTls().GetCredentialName() != ""
					case "HTTP":
						if !s.GetTls().GetHttpsRedirect() {
							t.Errorf("plain HTTP server on port %d does not redirect to HTTPS", s.GetPort().GetNumber())
						}
					default:
						t.Errorf("unexpected server protocol %q", s.GetPort().GetProtocol())
					}
				}
				if !https {
					t.Error("no HTTPS server with a credentialName")
				}
			}
			for _, vs := range b.virtualServices {
				if !slices.Equal(vs.Spec.GetHosts(), []string{publicHost}) || !slices.Equal(vs.Spec.GetGateways(), []string{gwName}) {
					t.Errorf("VirtualService hosts %v gateways %v, want [%s] via [%s]", vs.Spec.GetHosts(), vs.Spec.GetGateways(), publicHost, gwName)
				}
				if len(vs.Spec.GetHttp()) == 0 {
					t.Error("VirtualService routes nothing")
				}
				for _, route := range vs.Spec.GetHttp() {
					if len(route.GetMatch()) == 0 {
						t.Error("a route without a match sends every path to service-a")
					}
					for _, m := range route.GetMatch() {
						if m.GetUri().GetExact() != httpapi.ProductsPath {
							t.Errorf("route matches %v, want exactly %s", m.GetUri(), httpapi.ProductsPath)
						}
					}
					for _, dst := range route.GetRoute() {
						if dst.GetDestination().GetHost() != "service-a."+ns+".svc.cluster.local" || dst.GetDestination().GetPort().GetNumber() != uint32(apiPort(t)) {
							t.Errorf("route goes to %v, want service-a's API port", dst.GetDestination())
						}
					}
				}
			}
		})
	}
}
