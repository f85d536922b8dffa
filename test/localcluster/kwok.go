package localcluster

import (
	"fmt"
	"strings"
)

// kwokStages returns kwok's configuration: the node and pod lifecycle stages
// (given a configuration, kwok loads no default stages).
//
// Ordinary pods behave as with kwok's "fast" defaults: Running and Ready at
// once, deleted as soon as they are marked for deletion. Pods carrying the
// workload label (the webhook's) are only given their phase and IP: the
// workload runner starts the real process for them, reports Ready when the
// pod's readiness probe passes, and deletes them after the process has shut
// down, as a kubelet would.
func kwokStages(labelKey, labelValue string) string {
	label := fmt.Sprintf(`.metadata.labels[%q]`, labelKey)
	notOurs := fmt.Sprintf("    - key: '%s'\n      operator: 'NotIn'\n      values: [%q]\n", label, labelValue)
	ours := fmt.Sprintf("    - key: '%s'\n      operator: 'In'\n      values: [%q]\n", label, labelValue)
	pending := `    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Pending']
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values: ['True']
`
	stage := func(kind, name, selector, delay, next string) string {
		return fmt.Sprintf(`apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: %s
spec:
  resourceRef:
    apiGroup: v1
    kind: %s
  selector:
    matchExpressions:
%s%s  next:
%s`, name, kind, selector, delay, next)
	}
	nodeNotReady := "    - key: '.status.conditions.[] | select( .type == \"Ready\" ) | .status'\n      operator: 'NotIn'\n      values: ['True']\n"
	nodeReady := "    - key: '.status.phase'\n      operator: 'In'\n      values: ['Running']\n" +
		"    - key: '.status.conditions.[] | select( .type == \"Ready\" ) | .status'\n      operator: 'In'\n      values: ['True']\n"
	// Leases carry the node heartbeats; the status is refreshed every ~10 min.
	heartbeatDelay := "  delay:\n    durationMilliseconds: 600000\n    jitterDurationMilliseconds: 610000\n"
	return strings.Join([]string{
		stage("Node", "node-initialize", nodeNotReady, "", nodeStatusTemplate(true)),
		stage("Node", "node-heartbeat-with-lease", nodeReady, heartbeatDelay, nodeStatusTemplate(false)),
		stage("Pod", "pod-ready", pending+notOurs, "", statusTemplate("True")),
		stage("Pod", "pod-start-workload", pending+ours, "", statusTemplate("False")),
		stage("Pod", "pod-delete", "    - key: '.metadata.deletionTimestamp'\n      operator: 'Exists'\n"+notOurs, "", "    delete: true\n"),
	}, "---\n")
}

// nodeStatusTemplate is a Ready node; the addresses, capacity and
// allocatable the node was created with are kept.
func nodeStatusTemplate(initialize bool) string {
	t := `    statusTemplate: |
      {{ $now := Now }}
      {{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $lastTransitionTime | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}
      addresses:
      {{ with .status.addresses }}
      {{ YAML . 1 }}
      {{ else }}
      - address: {{ NodeIP | Quote }}
        type: InternalIP
      {{ end }}
`
	if initialize {
		t += `      allocatable:
      {{ with .status.allocatable }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: 1k
        memory: 1Ti
        pods: 1M
      {{ end }}
      capacity:
      {{ with .status.capacity }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: 1k
        memory: 1Ti
        pods: 1M
      {{ end }}
      nodeInfo:
        architecture: amd64
        operatingSystem: linux
        kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
        kubeProxyVersion: {{ printf "kwok-%s" Version | Quote }}
        containerRuntimeVersion: {{ printf "kwok-%s" Version | Quote }}
      phase: Running
`
	}
	return t
}

// statusTemplate is kwok's pod-ready status (phase Running, the pod's IPs from
// its node's podCIDR), with readiness as given.
func statusTemplate(ready string) string {
	return `    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "` + ready + `"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "` + ready + `"
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: ` + strings.ToLower(ready) + `
        restartCount: 0
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
      {{ $hostIPs := NodeIPsWith .spec.nodeName }}
      {{ with $hostIPs }}
      hostIP: {{ index . 0 | Quote }}
      hostIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      {{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      {{ with $podIPs }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      phase: Running
      startTime: {{ $now | Quote }}
`
}
