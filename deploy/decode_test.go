package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trustchain/trustchain/deploy"
)

// bundle is one rendered overlay, every object decoded into its typed
// struct and indexed by kind and name.
type bundle struct {
	overlay string
	yaml    string // the whole rendering, for text scans

	deployments      map[string]*appsv1.Deployment
	statefulSets     map[string]*appsv1.StatefulSet
	services         map[string]*corev1.Service
	serviceAccounts  map[string]*corev1.ServiceAccount
	configMaps       map[string]*corev1.ConfigMap
	secrets          map[string]*corev1.Secret
	pdbs             map[string]*policyv1.PodDisruptionBudget
	hpas             map[string]*autoscalingv2.HorizontalPodAutoscaler
	authzPolicies    map[string]*securityv1.AuthorizationPolicy
	peerAuths        map[string]*securityv1.PeerAuthentication
	requestAuths     map[string]*securityv1.RequestAuthentication
	gateways         map[string]*networkingv1.Gateway // Istio's own Gateway
	virtualServices  map[string]*networkingv1.VirtualService
	destinationRules map[string]*networkingv1.DestinationRule
	k8sGateways      map[string]*gatewayv1.Gateway // Gateway API: ingress and waypoint
	httpRoutes       map[string]*gatewayv1.HTTPRoute
	namespaceObjects map[string]*corev1.Namespace
	prometheusRules  map[string]*monitoringv1.PrometheusRule

	namespaces map[string]bool // every namespaced object's metadata.namespace ("" included)
}

func newBundle(overlay string) *bundle {
	return &bundle{
		overlay:          overlay,
		deployments:      map[string]*appsv1.Deployment{},
		statefulSets:     map[string]*appsv1.StatefulSet{},
		services:         map[string]*corev1.Service{},
		serviceAccounts:  map[string]*corev1.ServiceAccount{},
		configMaps:       map[string]*corev1.ConfigMap{},
		secrets:          map[string]*corev1.Secret{},
		pdbs:             map[string]*policyv1.PodDisruptionBudget{},
		hpas:             map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		authzPolicies:    map[string]*securityv1.AuthorizationPolicy{},
		peerAuths:        map[string]*securityv1.PeerAuthentication{},
		requestAuths:     map[string]*securityv1.RequestAuthentication{},
		gateways:         map[string]*networkingv1.Gateway{},
		virtualServices:  map[string]*networkingv1.VirtualService{},
		destinationRules: map[string]*networkingv1.DestinationRule{},
		k8sGateways:      map[string]*gatewayv1.Gateway{},
		httpRoutes:       map[string]*gatewayv1.HTTPRoute{},
		namespaceObjects: map[string]*corev1.Namespace{},
		prometheusRules:  map[string]*monitoringv1.PrometheusRule{},
		namespaces:       map[string]bool{},
	}
}

// deepCopy returns a bundle whose objects can be changed without touching
// b's, for the tests that loosen a rendering on purpose.
func (b *bundle) deepCopy() *bundle {
	c := newBundle(b.overlay)
	c.yaml = b.yaml
	copyAll(c.deployments, b.deployments)
	copyAll(c.statefulSets, b.statefulSets)
	copyAll(c.services, b.services)
	copyAll(c.serviceAccounts, b.serviceAccounts)
	copyAll(c.configMaps, b.configMaps)
	copyAll(c.secrets, b.secrets)
	copyAll(c.pdbs, b.pdbs)
	copyAll(c.hpas, b.hpas)
	copyAll(c.authzPolicies, b.authzPolicies)
	copyAll(c.peerAuths, b.peerAuths)
	copyAll(c.requestAuths, b.requestAuths)
	copyAll(c.gateways, b.gateways)
	copyAll(c.virtualServices, b.virtualServices)
	copyAll(c.destinationRules, b.destinationRules)
	copyAll(c.k8sGateways, b.k8sGateways)
	copyAll(c.httpRoutes, b.httpRoutes)
	copyAll(c.namespaceObjects, b.namespaceObjects)
	for ns := range b.namespaces {
		c.namespaces[ns] = true
	}
	return c
}

func copyAll[T interface{ DeepCopy() T }](dst, src map[string]T) {
	for k, v := range src {
		dst[k] = v.DeepCopy()
	}
}

// strictDecoder decodes Kubernetes JSON into typed objects and fails on an
// unknown, misspelled or duplicated field anywhere in the object. Istio
// specs are protobuf messages whose JSON decoding ignores unknown fields, so
// decodeStrict decodes them a second time with protojson, which does not.
type strictDecoder struct {
	k8s runtime.Decoder
}

func newStrictDecoder() (*strictDecoder, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme,
		autoscalingv2.AddToScheme, securityv1.AddToScheme, networkingv1.AddToScheme,
		gatewayv1.Install,
		monitoringv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("build scheme: %w", err)
		}
	}
	return &strictDecoder{k8s: kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, s, s,
		kjson.SerializerOptions{Strict: true})}, nil
}

// decodeStrict decodes one object's JSON.
func (d *strictDecoder) decodeStrict(data []byte) (runtime.Object, error) {
	obj, _, err := d.k8s.Decode(data, nil, nil)
	if err != nil {
		return nil, err
	}
	var spec proto.Message
	switch o := obj.(type) {
	case *securityv1.AuthorizationPolicy:
		spec = &o.Spec
	case *securityv1.PeerAuthentication:
		spec = &o.Spec
	case *securityv1.RequestAuthentication:
		spec = &o.Spec
	case *networkingv1.Gateway:
		spec = &o.Spec
	case *networkingv1.VirtualService:
		spec = &o.Spec
	case *networkingv1.DestinationRule:
		spec = &o.Spec
	default:
		return obj, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, err
	}
	raw, ok := top["spec"]
	if !ok {
		return nil, fmt.Errorf("%T has no spec", obj)
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(raw, spec); err != nil {
		return nil, fmt.Errorf("strict decoding %T spec: %w", obj, err)
	}
	return obj, nil
}

// add files a decoded object under its kind; a kind no check knows fails,
// so a new kind cannot slip past the assertions.
func (b *bundle) add(obj runtime.Object) error {
	var name, ns string
	switch o := obj.(type) {
	case *appsv1.Deployment:
		name, ns = o.Name, o.Namespace
		b.deployments[name] = o
	case *appsv1.StatefulSet:
		name, ns = o.Name, o.Namespace
		b.statefulSets[name] = o
	case *corev1.Service:
		name, ns = o.Name, o.Namespace
		b.services[name] = o
	case *corev1.ServiceAccount:
		name, ns = o.Name, o.Namespace
		b.serviceAccounts[name] = o
	case *corev1.ConfigMap:
		name, ns = o.Name, o.Namespace
		b.configMaps[name] = o
	case *corev1.Secret:
		name, ns = o.Name, o.Namespace
		b.secrets[name] = o
	case *policyv1.PodDisruptionBudget:
		name, ns = o.Name, o.Namespace
		b.pdbs[name] = o
	case *autoscalingv2.HorizontalPodAutoscaler:
		name, ns = o.Name, o.Namespace
		b.hpas[name] = o
	case *securityv1.AuthorizationPolicy:
		name, ns = o.Name, o.Namespace
		b.authzPolicies[name] = o
	case *securityv1.PeerAuthentication:
		name, ns = o.Name, o.Namespace
		b.peerAuths[name] = o
	case *securityv1.RequestAuthentication:
		name, ns = o.Name, o.Namespace
		b.requestAuths[name] = o
	case *networkingv1.Gateway:
		name, ns = o.Name, o.Namespace
		b.gateways[name] = o
	case *networkingv1.VirtualService:
		name, ns = o.Name, o.Namespace
		b.virtualServices[name] = o
	case *networkingv1.DestinationRule:
		name, ns = o.Name, o.Namespace
		b.destinationRules[name] = o
	case *gatewayv1.Gateway:
		name, ns = o.Name, o.Namespace
		b.k8sGateways[name] = o
	case *gatewayv1.HTTPRoute:
		name, ns = o.Name, o.Namespace
		b.httpRoutes[name] = o
	case *corev1.Namespace:
		// Cluster-scoped: it has no namespace of its own to record.
		if o.Name == "" {
			return fmt.Errorf("%T without a name", obj)
		}
		b.namespaceObjects[o.Name] = o
		return nil
	case *monitoringv1.PrometheusRule:
		name, ns = o.Name, o.Namespace
		b.prometheusRules[name] = o
	default:
		return fmt.Errorf("no check knows %T: add it to bundle and to the assertions", obj)
	}
	if name == "" {
		return fmt.Errorf("%T without a name", obj)
	}
	b.namespaces[ns] = true
	return nil
}

// renderOverlay builds overlays/<name> under root and decodes every object
// strictly.
func renderOverlay(tb testing.TB, root, name string) *bundle {
	tb.Helper()
	m, err := deploy.Render(filepath.Join(root, "overlays", name))
	if err != nil {
		tb.Fatal(err)
	}
	out, err := m.AsYaml()
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	dec, err := newStrictDecoder()
	if err != nil {
		tb.Fatal(err)
	}
	b := newBundle(name)
	b.yaml = string(out)
	for _, res := range m.Resources() {
		data, err := res.MarshalJSON()
		if err != nil {
			tb.Fatalf("%s: %s: %v", name, res.CurId(), err)
		}
		obj, err := dec.decodeStrict(data)
		if err != nil {
			tb.Fatalf("%s: %s: %v", name, res.CurId(), err)
		}
		if err := b.add(obj); err != nil {
			tb.Fatalf("%s: %s: %v", name, res.CurId(), err)
		}
	}
	return b
}

// renderAll renders every deployable overlay under root.
func renderAll(tb testing.TB, root string) []*bundle {
	tb.Helper()
	names, err := deploy.Overlays(root)
	if err != nil {
		tb.Fatal(err)
	}
	bundles := make([]*bundle, 0, len(names))
	for _, name := range names {
		bundles = append(bundles, renderOverlay(tb, root, name))
	}
	return bundles
}

// rawObjects renders every overlay and returns each object's JSON by
// "overlay Kind/name" ("overlay group/Kind/name" for the Gateway API, whose
// Gateway shares its kind with Istio's), as input for the negative
// strictness tests.
func rawObjects(tb testing.TB) map[string][]byte {
	tb.Helper()
	names, err := deploy.Overlays(".")
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]byte{}
	for _, name := range names {
		m, err := deploy.Render(filepath.Join(".", "overlays", name))
		if err != nil {
			tb.Fatal(err)
		}
		for _, res := range m.Resources() {
			data, err := res.MarshalJSON()
			if err != nil {
				tb.Fatal(err)
			}
			kind := res.GetKind()
			if g := res.GetGvk().Group; g == gatewayv1.GroupName {
				kind = g + "/" + kind
			}
			out[name+" "+kind+"/"+res.GetName()] = data
		}
	}
	return out
}

// The strict decoding is what makes a misspelled field fail the tests
// instead of being silently dropped by the API server or istiod; prove it
// rejects one in each kind of object that matters.
func TestStrictDecodingRejectsMisspelledFields(t *testing.T) {
	raw := rawObjects(t)
	dec, err := newStrictDecoder()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		object, field, misspelt string
	}{
		{"dev Deployment/service-b", `"readinessProbe"`, `"readinesProbe"`},
		{"dev Deployment/service-b", `"readOnlyRootFilesystem"`, `"readonlyRootFilesystem"`},
		{"dev Service/service-a", `"selector"`, `"selektor"`},
		{"dev PodDisruptionBudget/service-a", `"maxUnavailable"`, `"maxUnavailible"`},
		{"dev AuthorizationPolicy/service-c", `"principals"`, `"principal"`},
		{"dev AuthorizationPolicy/service-c", `"spec"`, `"spce"`},
		{"dev RequestAuthentication/auth0-jwt", `"forwardOriginalToken"`, `"forwardOrignalToken"`},
		{"dev PeerAuthentication/strict-mtls", `"mode"`, `"mdoe"`},
		{"dev DestinationRule/service-b", `"outlierDetection"`, `"outlierDetektion"`},
		{"dev Gateway/service-a", `"credentialName"`, `"credentialname"`},
		{"dev VirtualService/service-a", `"gateways"`, `"gateway"`},
		{"ambient Namespace/default", `"labels"`, `"lables"`},
		{"ambient AuthorizationPolicy/service-c", `"targetRefs"`, `"targetRefz"`},
		{"ambient AuthorizationPolicy/service-c-ztunnel", `"ports"`, `"port"`},
		{"ambient RequestAuthentication/auth0-jwt", `"targetRefs"`, `"targetRefz"`},
		{"ambient gateway.networking.k8s.io/Gateway/waypoint", `"gatewayClassName"`, `"gatewayclassName"`},
		{"ambient gateway.networking.k8s.io/Gateway/waypoint", `"listeners"`, `"listener"`},
		{"ambient gateway.networking.k8s.io/Gateway/trustchain-ingress", `"certificateRefs"`, `"certificateRef"`},
		{"ambient gateway.networking.k8s.io/HTTPRoute/service-a", `"backendRefs"`, `"backendRef"`},
		{"ambient gateway.networking.k8s.io/HTTPRoute/service-a", `"method"`, `"methd"`},
		{"dev PrometheusRule/trustchain", `"expr"`, `"expression"`},
		{"dev PrometheusRule/trustchain", `"annotations"`, `"anotations"`},
	}
	for _, tt := range tests {
		t.Run(tt.object+" "+tt.misspelt, func(t *testing.T) {
			data, ok := raw[tt.object]
			if !ok {
				t.Fatalf("no %s", tt.object)
			}
			if _, err := dec.decodeStrict(data); err != nil {
				t.Fatalf("the unmodified object must decode: %v", err)
			}
			bad := strings.Replace(string(data), tt.field, tt.misspelt, 1)
			if bad == string(data) {
				t.Fatalf("%s has no field %s to misspell", tt.object, tt.field)
			}
			if _, err := dec.decodeStrict([]byte(bad)); err == nil {
				t.Fatalf("decoded %s with %s misspelt as %s; want an error", tt.object, tt.field, tt.misspelt)
			}
		})
	}
}

// copyDeployTree copies this folder into a temporary one so a test can
// change a file and render the result.
func copyDeployTree(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.CopyFS(dir, os.DirFS(".")); err != nil {
		tb.Fatal(err)
	}
	return dir
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
