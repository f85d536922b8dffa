package main

import (
	"strings"
	"testing"
)

// An error about one object of the file names it (object N, kind and name), even in a file of
// one, and says what is wrong in words and paths, never as Go types.
func TestEveryObjectErrorNamesTheObjectInWords(t *testing.T) {
	for _, tc := range []struct{ name, input, want string }{
		{"a list", "[1,2]", "object 1: expected a YAML or JSON object with a kind, got a list"},
		{"a scalar", "hello", "object 1: expected a YAML or JSON object with a kind, got a string"},
		{"no kind", "metadata: {name: x}", "object 1: expected a YAML or JSON object with a kind"},
		{"containers not a list", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: x}\n",
			`object 1 (Pod p): not a valid Pod: spec.containers: Invalid value: "x": must be a list`},
		{"every wrong type of a Pod", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {gpu: yes}}\nspec: {containers: [{name: a, image: b, resources: {limits: {memory: lots}}}], hostIPC: 'no'}\n",
			`object 1 (Pod p): not a valid Pod: [metadata.labels[gpu]: Invalid value: true: must be a string (quote it), spec.containers[0].resources.limits[memory]: Invalid value: "lots": must be a quantity such as 8Gi, 500m or 2, spec.hostIPC: Invalid value: "no": must be true or false]`},
		{"a template's wrong type, with its path in the document", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {template: {spec: {containers: [{name: a, image: b, ports: [{containerPort: http}]}]}}}\n",
			`object 1 (Deployment d): Deployment /spec/template is not a valid Pod template: spec.template.spec.containers[0].ports[0].containerPort: Invalid value: "http": must be a whole number`},
		{"the third object, after a comment-only document", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec: {template: {spec: {restartPolicy: Never, containers: [{name: a, image: b}]}}}\n---\n# nothing here\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec: {containers: {}}\n",
			"object 3 (Pod bad): not a valid Pod: spec.containers: Invalid value: got an object, must be a list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, tc.input, "inject", "-f", "-")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
			for _, leak := range []string{"Go struct", "Go value", "cannot unmarshal"} {
				if strings.Contains(err.Error(), leak) {
					t.Fatalf("%q in %v", leak, err)
				}
			}
		})
	}
}

// A StatefulSet's Pods carry a PVC volume per volumeClaimTemplate, added by its controller
// before the webhook sees them: the preview decides on that Pod, as the cluster does, and
// prints the template without them.
func TestStatefulSetPreviewDecidesWithTheControllersClaimVolumes(t *testing.T) {
	profiles := writeFile(t, "profiles.yaml", `profiles:
- name: p
  pod:
    volumes: [{name: data, emptyDir: {}}, {name: cfg, configMap: {name: profile-cfg}}, {name: cache, emptyDir: {}}]
  container:
    volumeMounts: [{name: data, mountPath: /data}, {name: cache, mountPath: /cache}]
- name: enforcing
  pod:
    volumes: [{name: cfg, configMap: {name: profile-cfg}}, {name: cache, emptyDir: {}}]
  enforce: [volumes]
`)
	sts := func(profile string) string {
		return `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  volumeClaimTemplates: [{metadata: {name: data}, spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}]
  template:
    metadata: {labels: {app: db, ai.example.com/profile: ` + profile + `}}
    spec:
      volumes: [{name: cfg, configMap: {name: own-cfg}}]
      containers: [{name: a, image: b, volumeMounts: [{name: data, mountPath: /var/lib/db}, {name: cfg, mountPath: /etc/db}]}]
`
	}
	f := writeFile(t, "sts.yaml", sts("p"))
	explain, _, err := runCLI(t, "", "inject", "-f", f, "--profiles-file", profiles, "--explain")
	if err != nil {
		t.Fatal(err)
	}
	var dataRow string
	for _, line := range strings.Split(explain, "\n") {
		if strings.Contains(line, "volumes") && strings.Contains(line, " data ") {
			dataRow = line
		}
	}
	if !strings.Contains(dataRow, "skipped") {
		t.Fatalf("the Pod's own data volume (the claim) must win, as in the cluster; row %q:\n%s", dataRow, explain)
	}
	out, _, err := runCLI(t, "", "inject", "-f", f, "--profiles-file", profiles)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "claimName") || strings.Contains(out, "name: data\n") && !strings.Contains(out, "volumeClaimTemplates") {
		t.Fatalf("the controller's claim volume leaked into the template, or the profile's data volume was added:\n%s", out)
	}
	if !strings.Contains(out, "name: cache") || !strings.Contains(out, "name: own-cfg") {
		t.Fatalf("want the profile's cache volume added and the template's own cfg kept:\n%s", out)
	}
	// Enforced, the profile's cfg replaces the template's own, at its place in the template
	// (index 0 there, 1 in the controller's Pod).
	f = writeFile(t, "sts.yaml", sts("enforcing"))
	out, _, err = runCLI(t, "", "inject", "-f", f, "--profiles-file", profiles)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "name: profile-cfg") || strings.Contains(out, "own-cfg") || strings.Contains(out, "claimName") {
		t.Fatalf("want cfg replaced in the template, no claim volume:\n%s", out)
	}
	if again, _, err := runCLI(t, out, "inject", "-f", "-", "--profiles-file", profiles, "--patch"); err != nil || strings.TrimSpace(again) != "[]" {
		t.Fatalf("second pass patched: %v %s", err, again)
	}
}

// --explain says once why a Pod got no profile (on stdout, with the rest of the explanation).
func TestExplainSaysOnceWhyNoProfileApplied(t *testing.T) {
	f := writeFile(t, "pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {ai.example.com/inject: \"false\"}\nspec:\n  containers: [{name: a, image: b}]\n")
	out, stderr, err := runCLI(t, "", "inject", "-f", f, "--explain")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out+stderr, "no profile applied"); n != 1 || !strings.HasPrefix(out, "no profile applied: opted out") {
		t.Fatalf("want it said once, on stdout; got %d:\nstdout: %q\nstderr: %q", n, out, stderr)
	}
}
