package profile

import (
	"fmt"
	"strings"
	"testing"
)

func TestExamplesAreValid(t *testing.T) {
	set, err := Parse(Examples, testDomain)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(set.Names(), ","); got != "llm-inference,llm-inference-oci-model,notebook,pytorch-training,pytorch-training-dra" {
		t.Fatalf("example profiles: %s", got)
	}
}

// Omitted profile fields get their documented defaults at load.
func TestLoadFillsInOmittedProfileFields(t *testing.T) {
	set, err := Parse([]byte("profiles:\n- name: p\n  derived:\n    shm: {fraction: 0.5}\n"), testDomain)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := set.Get("p")
	if p.Containers.Select != SelectAll || p.GPUResource != DefaultGPUResource || p.Derived.Shm.MountPath != "/dev/shm" || p.Derived.Shm.VolumeName != "dshm" {
		t.Fatalf("defaults not applied: %+v", p.Profile)
	}
}

func TestStampChangesWithTheProfile(t *testing.T) {
	a, _ := Parse([]byte("profiles:\n- name: p\n  pod: {runtimeClassName: nvidia}\n"), testDomain)
	b, _ := Parse([]byte("profiles:\n- name: p\n  pod: {runtimeClassName: nvidia-cdi}\n"), testDomain)
	again, _ := Parse([]byte("profiles:\n- {name: p, pod: {runtimeClassName: nvidia}}\n"), testDomain)
	pa, _ := a.Get("p")
	pb, _ := b.Get("p")
	pa2, _ := again.Get("p")
	if pa.Stamp == pb.Stamp || pa.Stamp != pa2.Stamp || !strings.HasPrefix(pa.Stamp, "p@") {
		t.Fatalf("stamps: %s %s %s", pa.Stamp, pb.Stamp, pa2.Stamp)
	}
}

// An enforce entry with a key covers that key only; one without covers the whole field.
func TestEnforceEntryWithAKeyCoversOnlyThatKey(t *testing.T) {
	set, err := Parse([]byte("profiles:\n- name: p\n  pod: {runtimeClassName: x}\n  container:\n    env: [{name: A, value: b}, {name: B, value: c}]\n  enforce: [runtimeClassName, 'env:A']\n"), testDomain)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := set.Get("p")
	if !p.Enforced("runtimeClassName", "") || !p.Enforced("env", "A") || p.Enforced("env", "B") || p.Enforced("limits", "x") {
		t.Fatal("enforce entries misread")
	}
}

// Every field of the enforce table is accepted, with and without its key, when the profile
// sets it (derived settings count), and refused when it does not.
func TestEveryEnforceableFieldIsAcceptedWhenTheProfileSetsIt(t *testing.T) {
	const full = `profiles:
- name: p
  pod:
    runtimeClassName: nvidia
    schedulerName: volcano
    priorityClassName: high
    labels: {team: ml}
    annotations: {note: x}
    nodeSelector: {gpu: "true"}
    tolerations: [{key: nvidia.com/gpu, operator: Exists}]
    volumes: [{name: cache, emptyDir: {}}]
  container:
    limits: {nvidia.com/gpu: 1}
    env: [{name: A, value: b}]
    volumeMounts: [{name: cache, mountPath: /cache}]
  derived: {shm: {fraction: 0.5}, ompNumThreadsFromCPU: true}
  enforce: [%s]
`
	keys := map[string]string{"labels": "team", "annotations": "note", "nodeSelector": "gpu", "tolerations": "nvidia.com/gpu",
		"volumes": "dshm", "limits": "nvidia.com/gpu", "env": "OMP_NUM_THREADS", "volumeMounts": "/dev/shm"}
	for _, f := range enforceable {
		entries := []string{f.name}
		if f.key != "" {
			if keys[f.name] == "" {
				t.Fatalf("no test key for %s", f.name)
			}
			entries = append(entries, f.name+":"+keys[f.name])
		}
		for _, e := range entries {
			t.Run(e, func(t *testing.T) {
				if _, err := Parse([]byte(fmt.Sprintf(full, "'"+e+"'")), testDomain); err != nil {
					t.Fatalf("refused: %v", err)
				}
				_, err := Parse([]byte(fmt.Sprintf("profiles:\n- name: p\n  enforce: ['%s']\n", e)), testDomain)
				if err == nil || !strings.Contains(err.Error(), "the profile sets no "+f.name) {
					t.Fatalf("accepted on a profile that sets nothing: %v", err)
				}
			})
		}
	}
}

// The same invalid file gives the same message every time, though maps have no order.
func TestErrorsComeInTheSameOrderEveryTime(t *testing.T) {
	const bad = `profiles:
- name: p
  pod:
    runtimeClassName: A
    schedulerName: B
    priorityClassName: C
    labels: {"a b": v1, "c d": v2, "e f": v3}
    nodeSelector: {"g h": v1, "i j": v2}
    annotations: {"k l": v1, "m n": v2}
    volumes: [{name: e, ephemeral: {volumeClaimTemplate: {spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}, selector: {matchLabels: {"a b": v1, "c d": v2, "e f": v3}}}}}}]
  container:
    limits: {nvidia.com/gpu: 0, example.com/a: 0, example.com/b: 0}
`
	_, first := Parse([]byte(bad), testDomain)
	if first == nil {
		t.Fatal("accepted")
	}
	for range 30 {
		if _, err := Parse([]byte(bad), testDomain); err == nil || err.Error() != first.Error() {
			t.Fatalf("message changed:\n%v\nthen:\n%v", first, err)
		}
	}
}

// TestInvalidFiles: every problem is refused with the profile and field named.
func TestInvalidFiles(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"not YAML", "profiles: [", "not valid YAML"},
		{"no profiles", "profiles: []", "profiles: Required value"},
		{"unknown field, with its path", "profiles:\n- name: p\n  contianer: {}", `unknown field "profiles[0].contianer"`},
		{"duplicate key, with its line", "profiles:\n- name: p\n  name: q", `line 3: key "name" already set`},
		{"missing name", "profiles:\n- description: x", "profiles[0].name: Required value"},
		{"name not a DNS label", "profiles:\n- name: Big_Name", "profiles[Big_Name].name"},
		{"duplicate name", "profiles:\n- name: p\n- name: p", "profiles[p].name: Duplicate value"},
		{"unknown default", "defaultProfile: q\nprofiles:\n- name: p", `defaultProfile: Not found: "q"`},
		{"bad select", "profiles:\n- name: p\n  containers: {select: some}", `profiles[p].containers.select: Unsupported value: "some"`},
		{"named without names", "profiles:\n- name: p\n  containers: {select: named}", "profiles[p].containers.names: Required value"},
		{"names without named", "profiles:\n- name: p\n  containers: {select: all, names: [a]}", "profiles[p].containers.names: Forbidden"},
		{"bad label key", "profiles:\n- name: p\n  pod: {labels: {'a b': c}}", "profiles[p].pod.labels"},
		{"bad runtime class", "profiles:\n- name: p\n  pod: {runtimeClassName: NVIDIA}", "profiles[p].pod.runtimeClassName"},
		{"runtimeClassWhen unknown", "profiles:\n- name: p\n  pod: {runtimeClassName: nvidia, runtimeClassWhen: sometimes}", `profiles[p].pod.runtimeClassWhen: Unsupported value: "sometimes"`},
		{"runtimeClassWhen gpu without a class", "profiles:\n- name: p\n  pod: {runtimeClassWhen: gpu}", "profiles[p].pod.runtimeClassWhen: Invalid value: \"gpu\": needs runtimeClassName"},
		{"toleration Exists with value", "profiles:\n- name: p\n  pod: {tolerations: [{key: k, operator: Exists, value: v}]}", "profiles[p].pod.tolerations[0].value"},
		{"toleration bad effect", "profiles:\n- name: p\n  pod: {tolerations: [{key: k, operator: Exists, effect: Never}]}", "profiles[p].pod.tolerations[0].effect: Unsupported value"},
		{"tolerationSeconds without NoExecute", "profiles:\n- name: p\n  pod: {tolerations: [{key: k, operator: Exists, effect: NoSchedule, tolerationSeconds: 5}]}", "tolerationSeconds"},
		{"affinity In without values", "profiles:\n- name: p\n  pod: {affinity: {required: [{key: k, operator: In}]}}", "profiles[p].pod.affinity.required[0].values"},
		{"preferred weight", "profiles:\n- name: p\n  pod: {affinity: {preferred: [{weight: 0, preference: {matchExpressions: [{key: k, operator: Exists}]}}]}}", "weight"},
		{"volume without source", "profiles:\n- name: p\n  pod: {volumes: [{name: v}]}", "exactly one volume source"},
		{"volume with two sources", "profiles:\n- name: p\n  pod: {volumes: [{name: v, emptyDir: {}, hostPath: {path: /x}}]}", "found 2"},
		{"fractional GPU", "profiles:\n- name: p\n  container: {limits: {nvidia.com/gpu: 500m}}", "whole numbers"},
		{"zero limit", "profiles:\n- name: p\n  container: {limits: {nvidia.com/gpu: 0}}", "must be positive"},
		{"bad env name", "profiles:\n- name: p\n  container: {env: [{name: '1X', value: a}]}", "profiles[p].container.env[0].name"},
		{"duplicate env", "profiles:\n- name: p\n  container: {env: [{name: A, value: a}, {name: A, value: b}]}", "profiles[p].container.env[1].name: Duplicate"},
		{"env and derived OMP", "profiles:\n- name: p\n  container: {env: [{name: OMP_NUM_THREADS, value: '4'}]}\n  derived: {ompNumThreadsFromCPU: true}", "keep one"},
		{"relative mount path", "profiles:\n- name: p\n  container: {volumeMounts: [{name: v, mountPath: data}]}", "absolute path"},
		{"mount clashes with shm", "profiles:\n- name: p\n  container: {volumeMounts: [{name: v, mountPath: /dev/shm}]}\n  derived: {shm: {fraction: 0.5}}", "profiles[p].container.volumeMounts[0].mountPath: Duplicate"},
		{"shm fraction over 1", "profiles:\n- name: p\n  derived: {shm: {fraction: 1.5}}", "profiles[p].derived.shm.fraction"},
		{"shm name clashes with a volume", "profiles:\n- name: p\n  pod: {volumes: [{name: dshm, emptyDir: {}}]}\n  derived: {shm: {fraction: 0.5}}", "profiles[p].derived.shm.volumeName: Duplicate"},
		{"claim name not a DNS label", "profiles:\n- name: p\n  container: {resourceClaims: [{name: GPU, resourceClaimTemplateName: t}]}", "profiles[p].container.resourceClaims[0].name: Invalid value: \"GPU\""},
		{"claim without a template", "profiles:\n- name: p\n  container: {resourceClaims: [{name: gpu}]}", "profiles[p].container.resourceClaims[0].resourceClaimTemplateName: Required value"},
		{"claim of a named ResourceClaim", "profiles:\n- name: p\n  container: {resourceClaims: [{name: gpu, resourceClaimName: c, resourceClaimTemplateName: t}]}", "profiles[p].container.resourceClaims[0].resourceClaimName: Forbidden"},
		{"claim template not a DNS subdomain", "profiles:\n- name: p\n  container: {resourceClaims: [{name: gpu, resourceClaimTemplateName: T_1}]}", "profiles[p].container.resourceClaims[0].resourceClaimTemplateName: Invalid value"},
		{"duplicate claim", "profiles:\n- name: p\n  container: {resourceClaims: [{name: gpu, resourceClaimTemplateName: a}, {name: gpu, resourceClaimTemplateName: b}]}", "profiles[p].container.resourceClaims[1].name: Duplicate"},
		{"claims with select gpu", "profiles:\n- name: p\n  containers: {select: gpu}\n  container: {resourceClaims: [{name: gpu, resourceClaimTemplateName: a}]}", "profiles[p].container.resourceClaims: Invalid value: \"gpu (containers.select)\": select gpu reaches only"},
		{"GPU limit and claims", "profiles:\n- name: p\n  container: {limits: {nvidia.com/gpu: 1}, resourceClaims: [{name: gpu, resourceClaimTemplateName: a}]}", "profiles[p].container.limits[nvidia.com/gpu]: Invalid value: \"1\": a GPU limit and resourceClaims both request devices: keep one"},
		{"enforce unknown field", "profiles:\n- name: p\n  enforce: [image]", `profiles[p].enforce[0]: Unsupported value: "image"`},
		{"enforce what is not set", "profiles:\n- name: p\n  enforce: ['env:A']", "the profile sets no env A"},
		{"enforce key on a scalar", "profiles:\n- name: p\n  pod: {runtimeClassName: x}\n  enforce: ['runtimeClassName:x']", "takes no key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), testDomain)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestProblemsOfSeveralProfilesAreListedTogether(t *testing.T) {
	_, err := Parse([]byte("profiles:\n- name: a\n  pod: {runtimeClassName: X}\n- name: b\n  derived: {shm: {fraction: 0}}\n"), testDomain)
	if err == nil || !strings.Contains(err.Error(), "2 problem(s)") || !strings.Contains(err.Error(), "profiles[a]") || !strings.Contains(err.Error(), "profiles[b]") {
		t.Fatalf("want both problems listed, got %v", err)
	}
}

const testDomain = "ai.example.com"

// A profile may not set the webhook's own keys under its domain (label or annotation): the Pod
// would be mutated, then misread or refused when the webhook sees it again.
func TestProfileMayNotSetTheWebhooksOwnKeys(t *testing.T) {
	for _, tc := range []struct{ name, pod, domain, want string }{
		{"profile label", "labels: {ai.example.com/profile: other}", testDomain, "profiles[p].pod.labels[ai.example.com/profile]: Forbidden: reserved"},
		{"inject annotation", "annotations: {ai.example.com/inject: 'false'}", testDomain, "profiles[p].pod.annotations[ai.example.com/inject]: Forbidden"},
		{"injected annotation", "annotations: {ai.example.com/injected: x}", testDomain, "profiles[p].pod.annotations[ai.example.com/injected]: Forbidden"},
		{"under another domain", "labels: {gpu.corp.example/profile: x}", "gpu.corp.example", "profiles[p].pod.labels[gpu.corp.example/profile]: Forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte("profiles:\n- name: p\n  pod: {"+tc.pod+"}\n"), tc.domain)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
		})
	}
	// The same keys under a domain the webhook does not use are ordinary labels.
	if _, err := Parse([]byte("profiles:\n- name: p\n  pod: {labels: {ai.example.com/profile: x}}\n"), "gpu.corp.example"); err != nil {
		t.Fatal(err)
	}
}

func TestProblemListIndentsANestedListUnderItsEntry(t *testing.T) {
	nested := &InvalidError{Errs: []error{fmt.Errorf("profiles[a].x: bad"), fmt.Errorf("profiles[b].y: bad")}}
	got := ProblemList("config: 2 problem(s):", []error{fmt.Errorf("replicas: must be at least 1"), fmt.Errorf("profiles: %w", nested)})
	want := "config: 2 problem(s):\n" +
		"  replicas: must be at least 1\n" +
		"  profiles: profiles: 2 problem(s) to fix:\n" +
		"      profiles[a].x: bad\n" +
		"      profiles[b].y: bad"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
