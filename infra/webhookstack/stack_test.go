package webhookstack

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

func TestEveryResourceIsCreatedWithItsKeyFields(t *testing.T) {
	t.Parallel()
	res := mustRun(t, nil)
	tests := []struct {
		typ   string
		count int
		check func(t *testing.T, in map[string]any)
	}{
		{typeNamespace, 1, func(t *testing.T, in map[string]any) {
			want(t, "metadata.name", str(in, "metadata.name"), "ai-webhook")
		}},
		{typePrivateKey, 2, func(t *testing.T, in map[string]any) {
			want(t, "algorithm", str(in, "algorithm"), "ECDSA")
			want(t, "ecdsaCurve", str(in, "ecdsaCurve"), "P256")
		}},
		{typeSelfSignedCert, 1, func(t *testing.T, in map[string]any) {
			want(t, "isCaCertificate", get(in, "isCaCertificate"), true)
			want(t, "allowedUses", strs(in, "allowedUses"), []string{"cert_signing", "crl_signing", "digital_signature"})
			want(t, "validityPeriodHours", num(in, "validityPeriodHours"), 87600)
			if str(in, "subject.commonName") == "" {
				t.Error("the CA has no subject common name")
			}
		}},
		{typeCertRequest, 1, func(t *testing.T, in map[string]any) {
			want(t, "dnsNames", strs(in, "dnsNames"), []string{
				"ai-webhook", "ai-webhook.ai-webhook", "ai-webhook.ai-webhook.svc", "ai-webhook.ai-webhook.svc.cluster.local",
			})
		}},
		{typeLocallySignedCert, 1, func(t *testing.T, in map[string]any) {
			want(t, "allowedUses", strs(in, "allowedUses"), []string{"server_auth", "digital_signature", "key_encipherment"})
			want(t, "validityPeriodHours", num(in, "validityPeriodHours"), 8760)
			want(t, "earlyRenewalHours", num(in, "earlyRenewalHours"), 5880)
		}},
		{typeSecret, 1, func(t *testing.T, in map[string]any) {
			want(t, "type", str(in, "type"), string(corev1.SecretTypeTLS))
			for _, key := range []string{"tls.crt", "tls.key", "ca.crt"} {
				if !strings.Contains(secretData(t, in, key), "-----BEGIN ") {
					t.Errorf("data[%q] holds no PEM", key)
				}
			}
			want(t, "metadata.namespace", str(in, "metadata.namespace"), "ai-webhook")
		}},
		{typeConfigMap, 1, func(t *testing.T, in map[string]any) {
			want(t, "data[profiles.yaml]", str(in, "data.profiles\\.yaml"), string(profile.Examples))
		}},
		{typeServiceAccount, 1, func(t *testing.T, in map[string]any) {
			want(t, "automountServiceAccountToken", get(in, "automountServiceAccountToken"), false)
		}},
		{typeDeployment, 1, func(t *testing.T, in map[string]any) {
			want(t, "metadata.name", str(in, "metadata.name"), "ai-webhook")
			want(t, "spec.replicas", num(in, "spec.replicas"), 2)
			want(t, "image", str(in, "spec.template.spec.containers.0.image"), testImage)
		}},
		{typeService, 1, func(t *testing.T, in map[string]any) {
			want(t, "metadata.name", str(in, "metadata.name"), "ai-webhook")
			want(t, "port", num(in, "spec.ports.0.port"), 443)
			want(t, "targetPort", str(in, "spec.ports.0.targetPort"), "https")
			want(t, "selector", get(in, "spec.selector"), map[string]any{
				"app.kubernetes.io/name": "ai-webhook", "app.kubernetes.io/component": "admission-webhook",
				"app.kubernetes.io/instance": "ai-webhook",
			})
		}},
		{typePDB, 1, func(t *testing.T, in map[string]any) {
			want(t, "maxUnavailable", num(in, "spec.maxUnavailable"), 1)
			want(t, "selector", get(in, "spec.selector.matchLabels.app\\.kubernetes\\.io/name"), "ai-webhook")
		}},
		{typeMWC, 1, func(t *testing.T, in map[string]any) {
			want(t, "metadata.name", str(in, "metadata.name"), "ai-mutating-webhook")
			w := get(in, "webhooks.0")
			want(t, "name", str(w, "name"), "ai.example.com")
			want(t, "clientConfig.service", get(w, "clientConfig.service"), map[string]any{
				"name": "ai-webhook", "namespace": "ai-webhook", "path": "/mutate", "port": 443.0,
			})
			want(t, "rules", get(w, "rules"), []any{map[string]any{
				"operations": []any{"CREATE"}, "apiGroups": []any{""}, "apiVersions": []any{"v1"},
				"resources": []any{"pods"}, "scope": "Namespaced",
			}})
			want(t, "sideEffects", str(w, "sideEffects"), "None")
			want(t, "admissionReviewVersions", strs(w, "admissionReviewVersions"), []string{"v1"})
			want(t, "failurePolicy", str(w, "failurePolicy"), "Ignore")
			want(t, "reinvocationPolicy", str(w, "reinvocationPolicy"), "IfNeeded")
			want(t, "timeoutSeconds", num(w, "timeoutSeconds"), 10)
			want(t, "matchPolicy", str(w, "matchPolicy"), "Equivalent")
			want(t, "objectSelector", get(w, "objectSelector"), nil)
			if !strings.Contains(str(w, "matchConditions.0.expression"), "kubernetes.io/config.mirror") {
				t.Errorf("matchConditions do not skip mirror pods: %v", get(w, "matchConditions"))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			list := res.byType(tt.typ)
			if len(list) != tt.count {
				t.Fatalf("want %d %s, got %d", tt.count, tt.typ, len(list))
			}
			for _, r := range list {
				tt.check(t, r.Inputs)
			}
		})
	}
}

func TestEveryResourceIsAChildOfTheComponent(t *testing.T) {
	t.Parallel()
	res := mustRun(t, nil)
	if n := len(res.byType(ComponentType)); n != 1 {
		t.Fatalf("want one %s component, got %d", ComponentType, n)
	}
	for _, r := range res.resources {
		if r.Type == ComponentType {
			continue
		}
		if !strings.HasSuffix(r.Parent, "::"+ComponentType+"::ai-webhook") {
			t.Errorf("%s %q has parent %q, want the %s component", r.Type, r.Name, r.Parent, ComponentType)
		}
	}
}

func TestCABundleIsBase64OfTheCACertificate(t *testing.T) {
	t.Parallel()
	res := mustRun(t, nil)
	caPEM := secretData(t, res.one(t, typeSecret).Inputs, "ca.crt")
	bundle := str(res.one(t, typeMWC).Inputs, "webhooks.0.clientConfig.caBundle")
	if want := base64.StdEncoding.EncodeToString([]byte(caPEM)); bundle != want {
		t.Fatalf("caBundle = %q, want base64 of the CA certPem %q", bundle, want)
	}
	if got := str(res.one(t, typeLocallySignedCert).Inputs, "caCertPem"); got != caPEM {
		t.Fatalf("the serving certificate is signed by %q, not the CA in caBundle", got)
	}
}

func TestServingCertificateVerifiesForTheServiceDNSName(t *testing.T) {
	t.Parallel()
	for _, ns := range []string{"ai-webhook", "platform"} {
		t.Run(ns, func(t *testing.T) {
			res := mustRun(t, map[string]string{"namespace": ns})
			secret := res.one(t, typeSecret).Inputs
			leaf, err := parseCert(secretData(t, secret, "tls.crt"))
			if err != nil {
				t.Fatal(err)
			}
			ca, err := parseCert(secretData(t, secret, "ca.crt"))
			if err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca)
			// The API server dials <service>.<namespace>.svc and checks that name.
			name := "ai-webhook." + ns + ".svc"
			if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
				t.Fatalf("serving certificate (SANs %v) does not verify for %s: %v", leaf.DNSNames, name, err)
			}
			want(t, "service namespace", str(res.one(t, typeMWC).Inputs, "webhooks.0.clientConfig.service.namespace"), ns)
		})
	}
}

// A new CA would reach the serving Secret before the caBundle (which waits for the Deployment to
// roll): under failurePolicy Fail, Pods would be refused meanwhile. Moving the webhook to another
// namespace must leave the CA's inputs as they were; only the serving certificate follows.
func TestCAInputsDoNotFollowTheNamespace(t *testing.T) {
	t.Parallel()
	caInputs := func(namespace string) map[string]any {
		in := maps.Clone(mustRun(t, map[string]string{"namespace": namespace}).one(t, typeSelfSignedCert).Inputs)
		delete(in, "privateKeyPem") // the mock makes a new key every run
		return in
	}
	before, after := caInputs("ai-webhook"), caInputs("platform")
	want(t, "CA inputs after a namespace change", after, before)
	want(t, "CA subject", get(before, "subject"), map[string]any{"commonName": "ai-webhook CA", "organization": "ai-webhook"})
}

func TestNamespaceSelectorFollowsTheModeAndAlwaysExcludesSystemNamespaces(t *testing.T) {
	t.Parallel()
	exclusions := func(own string) map[string]any {
		return map[string]any{
			"key": "kubernetes.io/metadata.name", "operator": "NotIn",
			"values": []any{"kube-system", "kube-public", "kube-node-lease", own},
		}
	}
	optIn := []any{"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "1", "enabled", "Enabled", "ENABLED"}
	optOut := []any{"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "0", "disabled", "Disabled", "DISABLED"}
	tests := []struct {
		name   string
		config map[string]string
		want   map[string]any
	}{
		{"optIn is the default", nil, map[string]any{
			"matchExpressions": []any{
				map[string]any{"key": "ai.example.com/inject", "operator": "In", "values": optIn},
				exclusions("ai-webhook"),
			},
		}},
		{"optIn", map[string]string{"namespaceSelector": `{"mode":"optIn"}`, "domain": "gpu.acme.io"}, map[string]any{
			"matchExpressions": []any{
				map[string]any{"key": "gpu.acme.io/inject", "operator": "In", "values": optIn},
				exclusions("ai-webhook"),
			},
		}},
		{"optOut", map[string]string{"namespaceSelector": `{"mode":"optOut"}`}, map[string]any{
			"matchExpressions": []any{
				map[string]any{"key": "ai.example.com/inject", "operator": "NotIn", "values": optOut},
				exclusions("ai-webhook"),
			},
		}},
		{"all", map[string]string{"namespaceSelector": `{"mode":"all"}`}, map[string]any{
			"matchExpressions": []any{exclusions("ai-webhook")},
		}},
		{"all excludes a custom own namespace", map[string]string{"namespaceSelector": `{"mode":"all"}`, "namespace": "platform"}, map[string]any{
			"matchExpressions": []any{exclusions("platform")},
		}},
		{"all in kube-system lists it once", map[string]string{"namespaceSelector": `{"mode":"all"}`, "namespace": "kube-system", "createNamespace": "false"}, map[string]any{
			"matchExpressions": []any{map[string]any{
				"key": "kubernetes.io/metadata.name", "operator": "NotIn",
				"values": []any{"kube-system", "kube-public", "kube-node-lease"},
			}},
		}},
		{"custom", map[string]string{"namespaceSelector": `{"mode":"custom","matchLabels":{"team":"ml"},"matchExpressions":[{"key":"tier","operator":"In","values":["gpu"]}]}`}, map[string]any{
			"matchLabels": map[string]any{"team": "ml"},
			"matchExpressions": []any{
				map[string]any{"key": "tier", "operator": "In", "values": []any{"gpu"}},
				exclusions("ai-webhook"),
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := mustRun(t, tt.config)
			want(t, "namespaceSelector", get(res.one(t, typeMWC).Inputs, "webhooks.0.namespaceSelector"), tt.want)
		})
	}
}

// A namespace labelled with any spelling a Pod's <domain>/inject accepts (lower, Capitalised or
// UPPER case; label values cannot carry the spaces a Pod's value may) is treated as the Pod
// would be: optOut skips every opt-out word, optIn selects every opt-in word. Any other value
// changes nothing: optOut still injects, optIn still skips.
func TestNamespaceLabelCountsForEverySpellingThePodAccepts(t *testing.T) {
	t.Parallel()
	spellings := func(words []string) []string {
		var out []string
		for _, w := range words {
			out = append(out, w, strings.ToUpper(w[:1])+w[1:], strings.ToUpper(w))
		}
		return out
	}
	for _, mode := range []struct {
		name      string
		selects   []string // label values whose namespace the webhook sees
		skips     []string
		unlabeled bool // whether a namespace without the label is selected
	}{
		{"optOut", append(spellings(profile.OptInValues), "maybe", "fAlse"), spellings(profile.OptOutValues), true},
		{"optIn", spellings(profile.OptInValues), append(spellings(profile.OptOutValues), "maybe", "tRue"), false},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			res := mustRun(t, map[string]string{"namespaceSelector": `{"mode":"` + mode.name + `"}`})
			sel := labelSelector(t, get(res.one(t, typeMWC).Inputs, "webhooks.0.namespaceSelector"))
			ns := func(value string, labeled bool) labels.Set {
				l := labels.Set{corev1.LabelMetadataName: "team-a"}
				if labeled {
					l[profile.KeysFor(profile.DefaultDomain).Inject] = value
				}
				return l
			}
			for _, v := range mode.selects {
				if !sel.Matches(ns(v, true)) {
					t.Errorf("namespace labelled %q not selected by %s", v, sel)
				}
			}
			for _, v := range mode.skips {
				if sel.Matches(ns(v, true)) {
					t.Errorf("namespace labelled %q selected by %s", v, sel)
				}
			}
			if got := sel.Matches(ns("", false)); got != mode.unlabeled {
				t.Errorf("unlabelled namespace selected: %v, want %v", got, mode.unlabeled)
			}
		})
	}
}

// labelSelector reads a selector from the mock's inputs as the API server would.
func labelSelector(t *testing.T, v any) labels.Selector {
	t.Helper()
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var ls metav1.LabelSelector
	if err := json.Unmarshal(j, &ls); err != nil {
		t.Fatalf("%s: %v", j, err)
	}
	sel, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil {
		t.Fatalf("%s: %v", j, err)
	}
	return sel
}

func TestObjectSelectorAndRulesComeFromConfig(t *testing.T) {
	t.Parallel()
	res := mustRun(t, map[string]string{
		"objectSelector": `{"matchLabels":{"ai.example.com/managed":"true"}}`,
		"rules":          `[{"operations":["CREATE","UPDATE"],"apiGroups":[""],"apiVersions":["v1"],"resources":["pods"]}]`,
		"failurePolicy":  "Fail",
		"timeoutSeconds": "5",
	})
	w := get(res.one(t, typeMWC).Inputs, "webhooks.0")
	want(t, "objectSelector", get(w, "objectSelector"), map[string]any{"matchLabels": map[string]any{"ai.example.com/managed": "true"}})
	want(t, "operations", strs(w, "rules.0.operations"), []string{"CREATE", "UPDATE"})
	want(t, "failurePolicy", str(w, "failurePolicy"), "Fail")
	want(t, "timeoutSeconds", num(w, "timeoutSeconds"), 5)
}

// `pulumi config set --path resources.limits.cpu 2` stores the number 2, and
// `--path namespaceSelector.matchLabels.gpu true` the boolean true.
func TestNumbersAndBooleansSetWithPathAreReadAsText(t *testing.T) {
	t.Parallel()
	res := mustRun(t, map[string]string{
		"resources":         `{"limits":{"cpu":2}}`,
		"namespaceSelector": `{"mode":"custom","matchLabels":{"gpu":true}}`,
	})
	want(t, "limits.cpu", str(res.one(t, typeDeployment).Inputs, "spec.template.spec.containers.0.resources.limits.cpu"), "2")
	want(t, "matchLabels", get(res.one(t, typeMWC).Inputs, "webhooks.0.namespaceSelector.matchLabels"), map[string]any{"gpu": "true"})
}

func TestWebhookConfigurationDependsOnDeploymentAndService(t *testing.T) {
	t.Parallel()
	res := mustRun(t, nil)
	deps := res.one(t, typeMWC).Dependencies
	for _, typ := range []string{typeDeployment, typeService} {
		if !slices.ContainsFunc(deps, func(urn string) bool { return strings.Contains(urn, "$"+typ+"::") }) {
			t.Errorf("the MutatingWebhookConfiguration does not depend on the %s; dependencies: %v", typ, deps)
		}
	}
}

// One roll mechanism: a renewed certificate or new profiles replace the auto-named Secret or
// ConfigMap, and the replacement's new name in the pod template rolls the Deployment. So both
// must be auto-named, the template must take their names from them (a dependency), and no
// second mechanism (checksum annotations) may sit beside it.
func TestSecretAndConfigMapChangesRollThePodsThroughTheirGeneratedNames(t *testing.T) {
	t.Parallel()
	res := mustRun(t, nil)
	dep := res.one(t, typeDeployment)
	pod := get(dep.Inputs, "spec.template.spec")
	for _, tt := range []struct {
		typ, volume string
	}{
		{typeSecret, "volumes.0.secret.secretName"},
		{typeConfigMap, "volumes.1.configMap.name"},
	} {
		obj := res.one(t, tt.typ)
		if name := str(obj.Inputs, "metadata.name"); name != "" {
			t.Errorf("%s has the fixed name %q: a change would delete it before recreating it, under the running pods", tt.typ, name)
		}
		want(t, tt.typ+" volume", str(pod, tt.volume), str(obj.State, "metadata.name"))
		if !slices.ContainsFunc(dep.Dependencies, func(urn string) bool { return strings.HasSuffix(urn, "$"+tt.typ+"::"+obj.Name) }) {
			t.Errorf("the Deployment does not depend on the %s, so its replacement would not roll the pods; dependencies: %v", tt.typ, dep.Dependencies)
		}
	}
	want(t, "pod template annotations", get(dep.Inputs, "spec.template.metadata.annotations"), nil)
}

func TestProfilesComeFromConfig(t *testing.T) {
	t.Parallel()
	custom := strings.Replace(string(profile.Examples), "name: notebook", "name: jupyter", 1)
	res := mustRun(t, map[string]string{"profiles": custom})
	want(t, "ConfigMap data", str(res.one(t, typeConfigMap).Inputs, "data.profiles\\.yaml"), custom)
}

// The server learns the container's memory limit (the downward API) and sets its Go memory limit
// to 90% of it, so the garbage collector works harder before the kernel kills the container,
// whatever limit the cluster applies.
func TestGoMemoryLimitFollowsTheContainerMemoryLimit(t *testing.T) {
	t.Parallel()
	c := get(mustRun(t, map[string]string{"resources": `{"limits":{"memory":"512Mi"}}`}).one(t, typeDeployment).Inputs, "spec.template.spec.containers.0")
	want(t, "env", get(c, "env"), []any{map[string]any{
		"name": "AI_WEBHOOK_MEMORY_LIMIT",
		"valueFrom": map[string]any{"resourceFieldRef": map[string]any{
			"containerName": str(c, "name"), "resource": "limits.memory", "divisor": "1",
		}},
	}})
	want(t, "limits.memory", str(c, "resources.limits.memory"), "512Mi")
}

func TestDeploymentIsHardenedAndSpread(t *testing.T) {
	t.Parallel()
	res := mustRun(t, map[string]string{"priorityClassName": "system-cluster-critical", "replicas": "3"})
	pod := get(res.one(t, typeDeployment).Inputs, "spec.template.spec")
	c := get(pod, "containers.0")

	want(t, "priorityClassName", str(pod, "priorityClassName"), "system-cluster-critical")
	want(t, "automountServiceAccountToken", get(pod, "automountServiceAccountToken"), false)
	want(t, "serviceAccountName", str(pod, "serviceAccountName"), "ai-webhook")
	want(t, "securityContext", get(c, "securityContext"), map[string]any{
		"runAsNonRoot": true, "runAsUser": 65532.0, "runAsGroup": 65532.0,
		"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "privileged": false,
		"capabilities":   map[string]any{"drop": []any{"ALL"}},
		"seccompProfile": map[string]any{"type": "RuntimeDefault"},
	})
	want(t, "pod seccompProfile", str(pod, "securityContext.seccompProfile.type"), "RuntimeDefault")
	want(t, "args", strs(c, "args"), []string{
		"serve", "--listen=:8443",
		"--tls-cert-file=/etc/ai-webhook/tls/tls.crt", "--tls-key-file=/etc/ai-webhook/tls/tls.key",
		"--profiles-file=/etc/ai-webhook/profiles/profiles.yaml",
		"--domain=ai.example.com", "--shutdown-delay=5s", "--log-level=info", "--metrics-listen=:9090",
	})
	want(t, "containerPort", num(c, "ports.0.containerPort"), 8443)
	for _, p := range []struct{ probe, path string }{{"readinessProbe", "/readyz"}, {"livenessProbe", "/healthz"}} {
		want(t, p.probe, get(c, p.probe+".httpGet"), map[string]any{"path": p.path, "port": "https", "scheme": "HTTPS"})
	}
	want(t, "resources", get(c, "resources"), map[string]any{
		"requests": map[string]any{"cpu": "50m", "memory": "64Mi"},
		"limits":   map[string]any{"cpu": "1", "memory": "256Mi"},
	})
	want(t, "tls volume", str(pod, "volumes.0.secret.secretName"), str(res.one(t, typeSecret).State, "metadata.name"))
	want(t, "profiles volume", str(pod, "volumes.1.configMap.name"), str(res.one(t, typeConfigMap).State, "metadata.name"))
	want(t, "topologyKey", str(pod, "topologySpreadConstraints.0.topologyKey"), corev1.LabelHostname)
	want(t, "anti-affinity topologyKey",
		str(pod, "affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.0.podAffinityTerm.topologyKey"), corev1.LabelHostname)
	want(t, "replicas", num(res.one(t, typeDeployment).Inputs, "spec.replicas"), 3)
}

func TestExistingNamespaceIsUsedNotCreated(t *testing.T) {
	t.Parallel()
	res := mustRun(t, map[string]string{"createNamespace": "false", "namespace": "platform"})
	if n := len(res.byType(typeNamespace)); n != 0 {
		t.Fatalf("createNamespace=false created %d Namespace(s)", n)
	}
	for _, typ := range []string{typeSecret, typeConfigMap, typeServiceAccount, typeDeployment, typeService, typePDB} {
		want(t, typ+" namespace", str(res.one(t, typ).Inputs, "metadata.namespace"), "platform")
	}
}

func TestOutputsNameTheObjectsAndCarryNoKeyMaterial(t *testing.T) {
	t.Parallel()
	res := mustRun(t, nil)
	caPEM := secretData(t, res.one(t, typeSecret).Inputs, "ca.crt")
	leaf, err := parseCert(secretData(t, res.one(t, typeSecret).Inputs, "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	wantOutputs := map[string]any{
		"mutating_webhook_name": "ai-mutating-webhook",
		"namespace":             "ai-webhook",
		"service_name":          "ai-webhook",
		"deployment_name":       "ai-webhook",
		"ca_cert_pem":           caPEM,
		"serving_cert_expiry":   leaf.NotAfter.UTC().Format(time.RFC3339),
	}
	want(t, "output names", slices.Sorted(maps.Keys(res.outputs)), slices.Sorted(maps.Keys(wantOutputs)))
	for _, name := range slices.Sorted(maps.Keys(wantOutputs)) {
		out := res.outputs[name]
		want(t, name, out.Value, wantOutputs[name])
		if s, _ := out.Value.(string); strings.Contains(s, "PRIVATE KEY") {
			t.Errorf("output %s holds key material", name)
		}
	}
}

// secretData decodes one entry of a Secret's data.
func secretData(t *testing.T, secret map[string]any, key string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(str(secret, "data."+strings.ReplaceAll(key, ".", `\.`)))
	if err != nil {
		t.Fatalf("Secret data[%q]: %v", key, err)
	}
	return string(b)
}

// want fails the test when got and wanted differ.
func want(t *testing.T, what string, got, wanted any) {
	t.Helper()
	if !reflect.DeepEqual(got, wanted) {
		t.Errorf("%s = %#v, want %#v", what, got, wanted)
	}
}
