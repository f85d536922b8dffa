package webhookstack

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Resource types of the optional objects.
const (
	typeHPA           = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
	typeNetworkPolicy = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
)

func TestInvalidKnobsFailNamingTheKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config map[string]string
		want   string
	}{
		{"instance name with a capital", map[string]string{"name": "AI"}, `ai-webhook:name must be a DNS label starting with a letter`},
		{"instance name starting with a digit", map[string]string{"name": "1st"}, `ai-webhook:name must be a DNS label starting with a letter`},
		{"port zero", map[string]string{"port": "0"}, `ai-webhook:port must be a port number, got 0`},
		{"port too high", map[string]string{"port": "70000"}, `ai-webhook:port must be a port number, got 70000`},
		{"port of the kubelet on the host", map[string]string{"port": "10250", "hostNetwork": "true"}, `ai-webhook:port must not be 10250 with hostNetwork`},
		{"hostNetwork not a bool", map[string]string{"hostNetwork": "maybe"}, `ai-webhook:hostNetwork must be true or false, got "maybe"`},
		{"node selector key", map[string]string{"nodeSelector": `{"bad key":"x"}`}, `ai-webhook:nodeSelector: Invalid value: "bad key"`},
		{"toleration operator", map[string]string{"tolerations": `[{"key":"gpu","operator":"Equals"}]`}, `ai-webhook:tolerations[0].operator: Unsupported value: "Equals"`},
		{"toleration Exists with a value", map[string]string{"tolerations": `[{"key":"gpu","operator":"Exists","value":"x"}]`}, `ai-webhook:tolerations[0].value: Invalid value: "x": must be empty when operator is Exists`},
		{"toleration without key needs Exists", map[string]string{"tolerations": `[{"value":"x"}]`}, `ai-webhook:tolerations[0].operator: Invalid value: "": must be Exists when key is empty`},
		{"toleration seconds without NoExecute", map[string]string{"tolerations": `[{"key":"gpu","operator":"Exists","effect":"NoSchedule","tolerationSeconds":30}]`}, `ai-webhook:tolerations[0].tolerationSeconds: Invalid value: 30: is used only with effect NoExecute`},
		{"toleration effect", map[string]string{"tolerations": `[{"key":"gpu","operator":"Exists","effect":"NoRun"}]`}, `ai-webhook:tolerations[0].effect: Unsupported value: "NoRun"`},
		{"toleration field typo", map[string]string{"tolerations": `[{"key":"gpu","efect":"NoSchedule"}]`}, `ai-webhook:tolerations must be a JSON array matching the documented shape: json: unknown field "efect"`},
		{"node affinity operator (the scheduler's parser)", map[string]string{"affinity": `{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"pool","operator":"Is","values":["gpu"]}]}]}}}`},
			`ai-webhook:affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator: Unsupported value: "Is"`},
		{"anti-affinity weight", map[string]string{"affinity": `{"podAntiAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[{"weight":0,"podAffinityTerm":{"topologyKey":"zone"}}]}}`},
			`ai-webhook:affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be between 1 and 100`},
		{"anti-affinity without topologyKey", map[string]string{"affinity": `{"podAntiAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[{"labelSelector":{}}]}}`},
			`ai-webhook:affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value`},
		{"affinity field typo", map[string]string{"affinity": `{"nodeAfinity":{}}`}, `ai-webhook:affinity must be a JSON object matching the documented shape: json: unknown field "nodeAfinity"`},
		{"spread without topologyKey", map[string]string{"topologySpreadConstraints": `[{"maxSkew":1,"whenUnsatisfiable":"ScheduleAnyway"}]`}, `ai-webhook:topologySpreadConstraints[0].topologyKey: Required value`},
		{"spread whenUnsatisfiable", map[string]string{"topologySpreadConstraints": `[{"maxSkew":1,"topologyKey":"zone","whenUnsatisfiable":"Never"}]`}, `ai-webhook:topologySpreadConstraints[0].whenUnsatisfiable: Unsupported value: "Never"`},
		{"spread maxSkew", map[string]string{"topologySpreadConstraints": `[{"maxSkew":0,"topologyKey":"zone","whenUnsatisfiable":"DoNotSchedule"}]`}, `ai-webhook:topologySpreadConstraints[0].maxSkew: Invalid value: 0`},
		{"pull secret name", map[string]string{"imagePullSecrets": `["Registry Key"]`}, `ai-webhook:imagePullSecrets[0] must be a Secret name, got "Registry Key"`},
		{"pod label the selectors use", map[string]string{"podLabels": `{"app.kubernetes.io/instance":"other"}`}, `ai-webhook:podLabels must not set app.kubernetes.io/instance`},
		{"pod label value", map[string]string{"podLabels": `{"team":"ml platform"}`}, `ai-webhook:podLabels: Invalid value: "ml platform"`},
		{"pod annotation key", map[string]string{"podAnnotations": `{"bad key!":"x"}`}, `ai-webhook:podAnnotations: Invalid value: "bad key!"`},
		{"root with runAsNonRoot", map[string]string{"containerSecurityContext": `{"runAsUser":0}`}, `ai-webhook:containerSecurityContext runs as user 0 with runAsNonRoot true`},
		{"seccomp Localhost", map[string]string{"podSecurityContext": `{"seccompProfile":"Localhost"}`}, `ai-webhook:podSecurityContext.seccompProfile must be "RuntimeDefault", "Unconfined" or "" (unset), got "Localhost"`},
		{"negative user", map[string]string{"podSecurityContext": `{"runAsUser":-1}`}, `ai-webhook:podSecurityContext.runAsUser must not be negative, got -1`},
		{"security field not a number", map[string]string{"podSecurityContext": `{"runAsUser":"nobody"}`}, `ai-webhook:podSecurityContext must be a JSON object matching the documented shape: want an integer or "" (unset), got "nobody"`},
		{"privileged without escalation", map[string]string{"containerSecurityContext": `{"privileged":true}`}, `ai-webhook:containerSecurityContext privileged true needs allowPrivilegeEscalation true`},
		{"both PDB limits", map[string]string{"podDisruptionBudget": `{"minAvailable":1,"maxUnavailable":1}`}, `ai-webhook:podDisruptionBudget must set exactly one of minAvailable and maxUnavailable`},
		{"no PDB limit", map[string]string{"podDisruptionBudget": `{"maxUnavailable":""}`}, `ai-webhook:podDisruptionBudget must set exactly one of minAvailable and maxUnavailable`},
		{"PDB percentage", map[string]string{"podDisruptionBudget": `{"minAvailable":"half"}`}, `ai-webhook:podDisruptionBudget.minAvailable must be a number of Pods or a percentage such as 50%, got "half"`},
		{"PDB over 100%", map[string]string{"podDisruptionBudget": `{"maxUnavailable":"150%"}`}, `ai-webhook:podDisruptionBudget.maxUnavailable must not exceed 100%, got "150%"`},
		{"autoscaler max below min", map[string]string{"autoscaling": `{"enabled":true,"minReplicas":3,"maxReplicas":2}`}, `ai-webhook:autoscaling.maxReplicas must be at least minReplicas (3), got 2`},
		{"autoscaler without a target", map[string]string{"autoscaling": `{"enabled":true,"targetCPUUtilizationPercentage":0}`}, `ai-webhook:autoscaling needs targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage`},
		{"autoscaler enabled not a bool", map[string]string{"autoscaling": `{"enabled":"sometimes"}`}, `want true or false, got "sometimes"`},
		{"extra arg the stack sets", map[string]string{"extraArgs": `["--listen=:9443"]`}, `ai-webhook:extraArgs[0] sets --listen, which the stack sets itself`},
		{"extra arg with one dash", map[string]string{"extraArgs": `["-domain=x.example.com"]`}, `ai-webhook:extraArgs[0] sets -domain, which the stack sets itself`},
		{"extra arg not a flag", map[string]string{"extraArgs": `["serve"]`}, `ai-webhook:extraArgs[0] must be a flag`},
		{"extra env name", map[string]string{"extraEnv": `[{"name":"1X","value":"y"}]`}, `ai-webhook:extraEnv[0].name must be an environment variable name, got "1X"`},
		{"extra env the stack sets", map[string]string{"extraEnv": `[{"name":"AI_WEBHOOK_MEMORY_LIMIT","value":"1"}]`}, `ai-webhook:extraEnv[0].name AI_WEBHOOK_MEMORY_LIMIT is set twice (or by the stack)`},
		{"network policy without API server addresses", map[string]string{"networkPolicy": `{"enabled":true}`}, `ai-webhook:networkPolicy.apiServerCIDRs must list the addresses the API server calls from`},
		{"network policy CIDR", map[string]string{"networkPolicy": `{"apiServerCIDRs":["10.0.0.300/32"]}`}, `ai-webhook:networkPolicy.apiServerCIDRs[0] must be a CIDR such as 10.0.0.0/28`},
		{"network policy with hostNetwork", map[string]string{"hostNetwork": "true", "networkPolicy": `{"enabled":true,"apiServerCIDRs":["10.0.0.1/32"]}`}, `ai-webhook:networkPolicy.enabled has no effect with hostNetwork`},
		{"network policy Prometheus selector", map[string]string{"networkPolicy": `{"prometheus":{"podSelector":{"matchLabels":{"bad key!":"x"}}}}`}, `ai-webhook:networkPolicy.prometheus.podSelector.matchLabels`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantRefused(t, tt.config, tt.want)
		})
	}
}

func TestKnobProblemsAreReportedTogether(t *testing.T) {
	t.Parallel()
	_, err := run(t, map[string]string{
		"port": "0", "tolerations": `[{"key":"gpu","operator":"Equals"}]`, "podDisruptionBudget": `{"minAvailable":"x%"}`,
	})
	if err == nil {
		t.Fatal("invalid config was accepted")
	}
	for _, key := range []string{"ai-webhook:port", "ai-webhook:tolerations[0].operator", "ai-webhook:podDisruptionBudget.minAvailable"} {
		if !strings.Contains(err.Error(), "\n  "+key) {
			t.Errorf("error does not list %s on a line of its own:\n%v", key, err)
		}
	}
}

// The API server calls the Service on 443 whatever the container's port; the probes and the
// Service follow the port by its name.
func TestPortIsTheContainersAndTheServiceStays443(t *testing.T) {
	t.Parallel()
	res := mustRun(t, map[string]string{"port": "10250"})
	c := get(res.one(t, typeDeployment).Inputs, "spec.template.spec.containers.0")
	want(t, "containerPort", num(c, "ports.0.containerPort"), 10250)
	want(t, "hostPort", get(c, "ports.0.hostPort"), nil)
	if !slices.Contains(strs(c, "args"), "--listen=:10250") {
		t.Errorf("args %v do not listen on 10250", strs(c, "args"))
	}
	want(t, "readiness port", str(c, "readinessProbe.httpGet.port"), "https")
	svc := res.one(t, typeService).Inputs
	want(t, "service port", num(svc, "spec.ports.0.port"), 443)
	want(t, "targetPort", str(svc, "spec.ports.0.targetPort"), "https")
	want(t, "webhook port", num(res.one(t, typeMWC).Inputs, "webhooks.0.clientConfig.service.port"), 443)
}

func TestHostNetworkUsesClusterDNSAndTakesThePortOnTheNode(t *testing.T) {
	t.Parallel()
	pod := get(mustRun(t, map[string]string{"hostNetwork": "true", "port": "9443"}).one(t, typeDeployment).Inputs, "spec.template.spec")
	want(t, "hostNetwork", get(pod, "hostNetwork"), true)
	want(t, "dnsPolicy", str(pod, "dnsPolicy"), "ClusterFirstWithHostNet")
	want(t, "hostPort", num(pod, "containers.0.ports.0.hostPort"), 9443)

	pod = get(mustRun(t, nil).one(t, typeDeployment).Inputs, "spec.template.spec")
	want(t, "default hostNetwork", get(pod, "hostNetwork"), nil)
	want(t, "default dnsPolicy", get(pod, "dnsPolicy"), nil)
}

func TestSchedulingKnobsReachThePod(t *testing.T) {
	t.Parallel()
	own := map[string]any{"matchLabels": map[string]any{
		"app.kubernetes.io/name": "ai-webhook", "app.kubernetes.io/component": "admission-webhook", "app.kubernetes.io/instance": "ai-webhook",
	}}
	builtinSpread := []any{map[string]any{
		"maxSkew": 1.0, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": own,
	}}
	builtinAffinity := map[string]any{"podAntiAffinity": map[string]any{"preferredDuringSchedulingIgnoredDuringExecution": []any{
		map[string]any{"weight": 100.0, "podAffinityTerm": map[string]any{"topologyKey": "kubernetes.io/hostname", "labelSelector": own}},
	}}}
	gpuToleration := map[string]any{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
	tests := []struct {
		name   string
		config map[string]string
		want   map[string]any // pod spec fields
	}{
		{"defaults spread the instance over nodes", nil, map[string]any{
			"nodeSelector": nil, "tolerations": nil, "affinity": builtinAffinity, "topologySpreadConstraints": builtinSpread,
		}},
		{"node selector and tolerations", map[string]string{
			"nodeSelector": `{"pool":"system","gpu":false}`,
			"tolerations":  `[{"key":"nvidia.com/gpu","operator":"Exists","effect":"NoSchedule"},{"key":"dedicated","value":"infra","effect":"NoExecute","tolerationSeconds":"60"}]`,
		}, map[string]any{
			"nodeSelector": map[string]any{"pool": "system", "gpu": "false"},
			"tolerations": []any{gpuToleration, map[string]any{
				"key": "dedicated", "value": "infra", "effect": "NoExecute", "tolerationSeconds": 60.0,
			}},
			"affinity": builtinAffinity, "topologySpreadConstraints": builtinSpread,
		}},
		{"affinity replaces the built-in one", map[string]string{
			"affinity": `{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"pool","operator":"In","values":["system"]}]}]}}}`,
		}, map[string]any{
			"nodeSelector": nil, "tolerations": nil, "topologySpreadConstraints": builtinSpread,
			"affinity": map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{
				"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{"key": "pool", "operator": "In", "values": []any{"system"}}}}},
			}}},
		}},
		{"empty affinity and spread turn them off", map[string]string{"affinity": `{}`, "topologySpreadConstraints": `[]`}, map[string]any{
			"nodeSelector": nil, "tolerations": nil, "affinity": nil, "topologySpreadConstraints": nil,
		}},
		{"a spread without labelSelector spreads the instance", map[string]string{
			"topologySpreadConstraints": `[{"maxSkew":2,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"DoNotSchedule"}]`,
		}, map[string]any{
			"nodeSelector": nil, "tolerations": nil, "affinity": builtinAffinity,
			"topologySpreadConstraints": []any{map[string]any{
				"maxSkew": 2.0, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": own,
			}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pod := get(mustRun(t, tt.config).one(t, typeDeployment).Inputs, "spec.template.spec")
			for _, f := range slices.Sorted(maps.Keys(tt.want)) {
				want(t, f, get(pod, f), tt.want[f])
			}
		})
	}
}

func TestPullSecretsLabelsAndAnnotationsReachThePod(t *testing.T) {
	t.Parallel()
	dep := mustRun(t, map[string]string{
		"imagePullSecrets": `["registry-a","registry-b"]`,
		"podLabels":        `{"team":"platform","sidecar.istio.io/inject":false}`,
		"podAnnotations":   `{"cluster-autoscaler.kubernetes.io/safe-to-evict":"true"}`,
	}).one(t, typeDeployment).Inputs
	want(t, "imagePullSecrets", get(dep, "spec.template.spec.imagePullSecrets"), []any{
		map[string]any{"name": "registry-a"}, map[string]any{"name": "registry-b"},
	})
	labels := get(dep, "spec.template.metadata.labels").(map[string]any)
	want(t, "team", labels["team"], "platform")
	want(t, "istio", labels["sidecar.istio.io/inject"], "false")
	want(t, "instance", labels["app.kubernetes.io/instance"], "ai-webhook")
	want(t, "annotations", get(dep, "spec.template.metadata.annotations"), map[string]any{"cluster-autoscaler.kubernetes.io/safe-to-evict": "true"})
	if _, ok := get(dep, "metadata.labels").(map[string]any)["team"]; ok {
		t.Error("podLabels went on the Deployment itself")
	}
}

// A field given replaces that field; "" removes it (OpenShift's restricted SCC assigns the user
// and group itself); every other field keeps its hardened default.
func TestSecurityContextOverridesKeepTheHardenedRest(t *testing.T) {
	t.Parallel()
	pod := get(mustRun(t, map[string]string{
		"podSecurityContext":       `{"runAsUser":"","runAsGroup":"","fsGroup":""}`,
		"containerSecurityContext": `{"runAsUser":"","runAsGroup":"","capabilities":{"add":["NET_BIND_SERVICE"]}}`,
	}).one(t, typeDeployment).Inputs, "spec.template.spec")
	want(t, "pod securityContext", get(pod, "securityContext"), map[string]any{
		"runAsNonRoot": true, "seccompProfile": map[string]any{"type": "RuntimeDefault"},
	})
	want(t, "container securityContext", get(pod, "containers.0.securityContext"), map[string]any{
		"runAsNonRoot": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "privileged": false,
		"capabilities":   map[string]any{"add": []any{"NET_BIND_SERVICE"}, "drop": []any{"ALL"}},
		"seccompProfile": map[string]any{"type": "RuntimeDefault"},
	})

	pod = get(mustRun(t, map[string]string{"containerSecurityContext": `{"runAsUser":1000}`}).one(t, typeDeployment).Inputs, "spec.template.spec")
	want(t, "runAsUser", num(pod, "containers.0.securityContext.runAsUser"), 1000)
	want(t, "runAsGroup kept", num(pod, "containers.0.securityContext.runAsGroup"), nonRootID)
}

func TestPodDisruptionBudgetTakesOneLimit(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		config   string
		min, max any
	}{
		{"", nil, 1.0},
		{`{"minAvailable":1}`, 1.0, nil},
		{`{"maxUnavailable":"50%"}`, nil, "50%"},
		{`{"minAvailable":"","maxUnavailable":2}`, nil, 2.0},
	} {
		t.Run(tt.config, func(t *testing.T) {
			t.Parallel()
			config := map[string]string{}
			if tt.config != "" {
				config["podDisruptionBudget"] = tt.config
			}
			spec := get(mustRun(t, config).one(t, typePDB).Inputs, "spec")
			want(t, "minAvailable", get(spec, "minAvailable"), tt.min)
			want(t, "maxUnavailable", get(spec, "maxUnavailable"), tt.max)
			want(t, "unhealthyPodEvictionPolicy", str(spec, "unhealthyPodEvictionPolicy"), "AlwaysAllow")
		})
	}
}

func TestAutoscalerOwnsTheReplicasWhenEnabled(t *testing.T) {
	t.Parallel()
	res := mustRun(t, nil)
	if n := len(res.byType(typeHPA)); n != 0 {
		t.Fatalf("%d HorizontalPodAutoscalers by default", n)
	}
	want(t, "replicas", num(res.one(t, typeDeployment).Inputs, "spec.replicas"), 2)

	res = mustRun(t, map[string]string{"autoscaling": `{"enabled":true,"maxReplicas":"6","targetMemoryUtilizationPercentage":75}`})
	hpa := res.one(t, typeHPA).Inputs
	want(t, "scaleTargetRef", get(hpa, "spec.scaleTargetRef"), map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "ai-webhook"})
	want(t, "minReplicas", num(hpa, "spec.minReplicas"), 2)
	want(t, "maxReplicas", num(hpa, "spec.maxReplicas"), 6)
	want(t, "metrics", get(hpa, "spec.metrics"), []any{
		map[string]any{"type": "Resource", "resource": map[string]any{"name": "cpu", "target": map[string]any{"type": "Utilization", "averageUtilization": 80.0}}},
		map[string]any{"type": "Resource", "resource": map[string]any{"name": "memory", "target": map[string]any{"type": "Utilization", "averageUtilization": 75.0}}},
	})
	want(t, "namespace", str(hpa, "metadata.namespace"), "ai-webhook")
	if r := get(res.one(t, typeDeployment).Inputs, "spec.replicas"); r != nil {
		t.Errorf("the Deployment sets replicas %v beside the autoscaler: every pulumi up would undo its scaling", r)
	}
}

func TestExtraArgsAndEnvFollowTheStacksOwn(t *testing.T) {
	t.Parallel()
	c := get(mustRun(t, map[string]string{
		"extraArgs": `["--max-body-bytes=4194304","--drain-timeout=20s"]`,
		"extraEnv":  `[{"name":"GODEBUG","value":"http2server=0"},{"name":"WORKERS","value":4}]`,
	}).one(t, typeDeployment).Inputs, "spec.template.spec.containers.0")
	args := strs(c, "args")
	want(t, "first arg", args[0], "serve")
	want(t, "last args", args[len(args)-2:], []string{"--max-body-bytes=4194304", "--drain-timeout=20s"})
	env := get(c, "env").([]any)
	want(t, "memory limit env first", str(env[0], "name"), "AI_WEBHOOK_MEMORY_LIMIT")
	want(t, "extra env", env[1:], []any{
		map[string]any{"name": "GODEBUG", "value": "http2server=0"}, map[string]any{"name": "WORKERS", "value": "4"},
	})
}

func TestNetworkPolicyAdmitsOnlyTheAPIServerToTheWebhookPort(t *testing.T) {
	t.Parallel()
	if n := len(mustRun(t, nil).byType(typeNetworkPolicy)); n != 0 {
		t.Fatalf("%d NetworkPolicies by default", n)
	}
	np := mustRun(t, map[string]string{
		"name": "canary", "port": "10250",
		"networkPolicy": `{"enabled":true,"apiServerCIDRs":["172.16.0.2/32","10.0.0.0/28"]}`,
	}).one(t, typeNetworkPolicy).Inputs
	want(t, "name", str(np, "metadata.name"), "canary")
	want(t, "podSelector", get(np, "spec.podSelector"), map[string]any{"matchLabels": map[string]any{
		"app.kubernetes.io/name": "ai-webhook", "app.kubernetes.io/component": "admission-webhook", "app.kubernetes.io/instance": "canary",
	}})
	want(t, "policyTypes", strs(np, "spec.policyTypes"), []string{"Ingress"})
	want(t, "webhook rule", get(np, "spec.ingress.0"), map[string]any{
		"from":  []any{map[string]any{"ipBlock": map[string]any{"cidr": "172.16.0.2/32"}}, map[string]any{"ipBlock": map[string]any{"cidr": "10.0.0.0/28"}}},
		"ports": []any{map[string]any{"port": 10250.0, "protocol": "TCP"}},
	})
	want(t, "egress", get(np, "spec.egress"), nil)
}

// Two installations in one cluster: every name and selector follows the instance; the
// cluster-scoped names differ; the default instance keeps today's names and its Deployment
// selector (immutable), so an existing stack is updated in place.
func TestInstanceNamesEveryObjectAndSelector(t *testing.T) {
	t.Parallel()
	res := mustRun(t, map[string]string{"name": "canary", "namespace": "ai-canary", "domain": "canary.example.com", "clusterFacts": "true"})
	canary := map[string]any{
		"app.kubernetes.io/name": "ai-webhook", "app.kubernetes.io/component": "admission-webhook", "app.kubernetes.io/instance": "canary",
	}
	for _, typ := range []string{typeServiceAccount, typeDeployment, typeService, typePDB} {
		want(t, typ+" name", str(res.one(t, typ).Inputs, "metadata.name"), "canary")
	}
	for _, r := range res.resources {
		if strings.HasPrefix(r.Type, "kubernetes:") {
			want(t, r.Type+" instance label", get(r.Inputs, `metadata.labels.app\.kubernetes\.io/instance`), "canary")
		}
	}
	dep := res.one(t, typeDeployment).Inputs
	want(t, "Deployment selector", get(dep, "spec.selector.matchLabels"), canary)
	want(t, "Service selector", get(res.one(t, typeService).Inputs, "spec.selector"), canary)
	want(t, "PDB selector", get(res.one(t, typePDB).Inputs, "spec.selector.matchLabels"), canary)
	want(t, "serviceAccountName", str(dep, "spec.template.spec.serviceAccountName"), "canary")
	mwc := res.one(t, typeMWC).Inputs
	want(t, "webhook configuration name", str(mwc, "metadata.name"), "canary")
	want(t, "webhook name", str(mwc, "webhooks.0.name"), "canary.example.com")
	want(t, "clientConfig.service", get(mwc, "webhooks.0.clientConfig.service.name"), "canary")
	want(t, "serving certificate names", strs(res.one(t, typeCertRequest).Inputs, "dnsNames"), ServiceDNSNames("canary", "ai-canary"))
	want(t, "ClusterRoleBinding subject", get(res.one(t, typeClusterRoleBinding).Inputs, "subjects.0.name"), "canary")
	if name := str(res.one(t, typeClusterRole).Inputs, "metadata.name"); name != "" {
		t.Errorf("ClusterRole has the fixed name %q: two instances would collide", name)
	}

	res = mustRun(t, nil)
	for _, typ := range []string{typeServiceAccount, typeDeployment, typeService, typePDB} {
		want(t, typ+" default name", str(res.one(t, typ).Inputs, "metadata.name"), "ai-webhook")
	}
	want(t, "default webhook configuration name", str(res.one(t, typeMWC).Inputs, "metadata.name"), "ai-mutating-webhook")
	want(t, "default webhook name", str(res.one(t, typeMWC).Inputs, "webhooks.0.name"), "ai.example.com")
	want(t, "default Deployment selector (as first created)", get(res.one(t, typeDeployment).Inputs, "spec.selector.matchLabels"), map[string]any{
		"app.kubernetes.io/name": "ai-webhook", "app.kubernetes.io/component": "admission-webhook",
	})
	want(t, "default Service selector", get(res.one(t, typeService).Inputs, `spec.selector.app\.kubernetes\.io/instance`), "ai-webhook")
	want(t, "given webhookConfigName", str(mustRun(t, map[string]string{"name": "canary", "webhookConfigName": "gpu-injector"}).one(t, typeMWC).Inputs, "metadata.name"), "gpu-injector")
}

// Pulumi names resources by their logical names; a logical name that followed the instance
// would replace every resource, the CA with it, on a rename. They do not follow it, so no alias
// is needed, and the CA's inputs stay as they were.
func TestInstanceNameLeavesLogicalNamesAndTheCA(t *testing.T) {
	t.Parallel()
	logical := func(res *result) []string {
		var out []string
		for _, r := range res.resources {
			out = append(out, r.Type+"::"+r.Name)
		}
		slices.Sort(out)
		return out
	}
	before, after := mustRun(t, nil), mustRun(t, map[string]string{"name": "renamed"})
	want(t, "logical names", logical(after), logical(before))
	ca := func(res *result) map[string]any {
		in := maps.Clone(res.one(t, typeSelfSignedCert).Inputs)
		delete(in, "privateKeyPem")
		return in
	}
	want(t, "CA inputs", ca(after), ca(before))
}

// The Service's selector gains the instance label on the first update after an upgrade: it must
// change only once the Deployment's Pods carry the label, or the Service has no endpoints.
func TestServiceWaitsForTheDeployment(t *testing.T) {
	t.Parallel()
	res := mustRun(t, nil)
	dep := res.one(t, typeDeployment)
	if !slices.ContainsFunc(res.one(t, typeService).Dependencies, func(urn string) bool { return strings.HasSuffix(urn, "$"+typeDeployment+"::"+dep.Name) }) {
		t.Errorf("the Service does not depend on the Deployment: %v", res.one(t, typeService).Dependencies)
	}
}

// README's tables name every key Pulumi.yaml declares.
func TestREADMETablesListEveryConfigKey(t *testing.T) {
	t.Parallel()
	var project struct {
		Config projectConfig `json:"config"`
	}
	readYAML(t, "../../Pulumi.yaml", &project)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	row := regexp.MustCompile("(?m)^\\| (`[^|]*)\\|")
	key := regexp.MustCompile("`([A-Za-z.]+)`")
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		for _, k := range key.FindAllStringSubmatch(m[1], -1) {
			documented[k[1]] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(project.Config)) {
		if !documented[k] {
			t.Errorf("README has no table row for config key %s", k)
		}
	}
}
