package profile

import (
	"strings"
	"testing"
)

// A value of the wrong type (YAML 1.1 reads y, yes and on as true) is reported with its profile
// and path, every one of them, and the rest of the file is still checked.
func TestWrongTypesAreReportedWithTheirPathTogetherWithEveryOtherProblem(t *testing.T) {
	_, err := Parse([]byte(`profiles:
- name: a
  pod:
    volumes: [{name: y, emptyDir: {}}, {name: c, configMap: {name: c, defaultMode: "0644"}}]
    nodeSelector: {gpu: yes}
  container:
    env: [{name: A, value: 1}]
    limits: {nvidia.com/gpu: 1x}
- name: b
  pod: {runtimeClassName: NVIDIA, tolerations: {key: k}}
  containers: {initContainers: "yes"}
- name: true
  description: x
`), testDomain)
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"profiles[a].pod.volumes[0].name: Invalid value: true: must be a string (quote it)",
		`profiles[a].pod.volumes[1].configMap.defaultMode: Invalid value: "0644": must be a whole number`,
		"profiles[a].pod.nodeSelector[gpu]: Invalid value: true: must be a string (quote it)",
		"profiles[a].container.env[0].value: Invalid value: 1: must be a string (quote it)",
		`profiles[a].container.limits[nvidia.com/gpu]: Invalid value: "1x": must be a quantity`,
		"profiles[b].pod.runtimeClassName: Invalid value", // the checks still run on a profile with a type error
		"profiles[b].pod.tolerations: Invalid value: got an object, must be a list",
		`profiles[b].containers.initContainers: Invalid value: "yes": must be true or false`,
		"profiles[2].name: Invalid value: true: must be a string (quote it)",
		"9 problem(s)", // a removed value is not reported again as missing
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	for _, leak := range []string{"cannot unmarshal", "Go struct", "Required value"} {
		if strings.Contains(msg, leak) {
			t.Errorf("%q in:\n%s", leak, msg)
		}
	}
}

// A value only its own type can judge (a timestamp) fails that profile alone, under its name;
// the other profiles are still checked.
func TestAProfileThatCannotBeReadIsNamedAndTheOthersAreStillChecked(t *testing.T) {
	_, err := Parse([]byte(`profiles:
- name: a
  pod: {volumes: [{name: v, ephemeral: {volumeClaimTemplate: {metadata: {creationTimestamp: soon}, spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}}}]}
- name: b
  pod: {runtimeClassName: NVIDIA}
`), testDomain)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"profiles[a]: Invalid value: cannot read:", "profiles[b].pod.runtimeClassName", "2 problem(s)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestAFileThatIsNotAnObjectIsRefusedInWords(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"[1, 2]", "must be an object with a list of profiles (profiles: [...]), not a list"},
		{"profiles: {name: p}", "profiles: Invalid value: got an object, must be a list"},
		{"profiles: [x]", "profiles[0]: Invalid value: \"x\": must be an object"},
	} {
		_, err := Parse([]byte(tc.yaml), testDomain)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "Go ") {
			t.Errorf("%s: want %q, got %v", tc.yaml, tc.want, err)
		}
	}
}
