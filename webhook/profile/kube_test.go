package profile

import (
	"strings"
	"testing"
)

// Values the API server (or the scheduler) would refuse are refused at load, each with its
// profile and field path.
func TestValuesKubernetesRefusesAreRefusedAtLoad(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"valueFrom with no source", "container: {env: [{name: A, valueFrom: {}}]}", "profiles[p].container.env[0].valueFrom: Required value"},
		{"misspelt fieldPath", "container: {env: [{name: A, valueFrom: {fieldRef: {fieldPath: metadata.nmae}}}]}", `profiles[p].container.env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "metadata.nmae"`},
		{"fieldRef label subscript", "container: {env: [{name: A, valueFrom: {fieldRef: {fieldPath: \"metadata.labels['a b']\"}}}]}", "profiles[p].container.env[0].valueFrom.fieldRef.fieldPath: Invalid value"},
		{"fieldRef apiVersion", "container: {env: [{name: A, valueFrom: {fieldRef: {apiVersion: v2, fieldPath: metadata.name}}}]}", "profiles[p].container.env[0].valueFrom.fieldRef.apiVersion: Unsupported value"},
		{"resourceFieldRef to a non-resource", "container: {env: [{name: A, valueFrom: {resourceFieldRef: {resource: limits.gpu}}}]}", `profiles[p].container.env[0].valueFrom.resourceFieldRef.resource: Unsupported value: "limits.gpu"`},
		{"resourceFieldRef divisor", "container: {env: [{name: A, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1Mi}}}]}", "profiles[p].container.env[0].valueFrom.resourceFieldRef.divisor: Unsupported value"},
		{"two value sources", "container: {env: [{name: A, valueFrom: {fieldRef: {fieldPath: metadata.name}, secretKeyRef: {name: s, key: k}}}]}", "profiles[p].container.env[0].valueFrom: Forbidden: exactly one value source"},
		{"value and valueFrom", "container: {env: [{name: A, value: x, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]}", "profiles[p].container.env[0].valueFrom: Forbidden"},
		{"secretKeyRef without key", "container: {env: [{name: A, valueFrom: {secretKeyRef: {name: s}}}]}", "profiles[p].container.env[0].valueFrom.secretKeyRef.key: Required value"},
		{"PVC without claimName", "pod: {volumes: [{name: v, persistentVolumeClaim: {}}]}", "profiles[p].pod.volumes[0].persistentVolumeClaim.claimName: Required value"},
		{"defaultMode 0999", "pod: {volumes: [{name: v, configMap: {name: c, defaultMode: 0999}}]}", "profiles[p].pod.volumes[0].configMap.defaultMode: Invalid value"},
		{"item mode", "pod: {volumes: [{name: v, secret: {secretName: s, items: [{key: k, path: p, mode: 01000}]}}]}", "profiles[p].pod.volumes[0].secret.items[0].mode"},
		{"item path with ..", "pod: {volumes: [{name: v, configMap: {name: c, items: [{key: k, path: ../x}]}}]}", "profiles[p].pod.volumes[0].configMap.items[0].path: Invalid value"},
		{"negative sizeLimit", "pod: {volumes: [{name: v, emptyDir: {sizeLimit: -1Gi}}]}", "profiles[p].pod.volumes[0].emptyDir.sizeLimit: Invalid value"},
		{"hostPath with ..", "pod: {volumes: [{name: v, hostPath: {path: /a/../b}}]}", "profiles[p].pod.volumes[0].hostPath.path"},
		{"hostPath type", "pod: {volumes: [{name: v, hostPath: {path: /a, type: Folder}}]}", "profiles[p].pod.volumes[0].hostPath.type: Unsupported value"},
		{"configMap without name", "pod: {volumes: [{name: v, configMap: {}}]}", "profiles[p].pod.volumes[0].configMap.name: Required value"},
		{"downwardAPI file without source", "pod: {volumes: [{name: v, downwardAPI: {items: [{path: a}]}}]}", "profiles[p].pod.volumes[0].downwardAPI.items[0]: Required value"},
		{"downwardAPI resource without container", "pod: {volumes: [{name: v, downwardAPI: {items: [{path: a, resourceFieldRef: {resource: limits.cpu}}]}}]}", "profiles[p].pod.volumes[0].downwardAPI.items[0].resourceFieldRef.containerName: Required value"},
		{"projected token too short", "pod: {volumes: [{name: v, projected: {sources: [{serviceAccountToken: {path: t, expirationSeconds: 60}}]}}]}", "profiles[p].pod.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds"},
		{"projected duplicate paths", "pod: {volumes: [{name: v, projected: {sources: [{configMap: {name: a, items: [{key: k, path: x}]}}, {secret: {name: b, items: [{key: k, path: x}]}}]}}]}", "profiles[p].pod.volumes[0].projected.sources[1].secret.items[0].path: Duplicate value"},
		{"ephemeral without storage", "pod: {volumes: [{name: v, ephemeral: {volumeClaimTemplate: {spec: {accessModes: [ReadWriteOnce]}}}}]}", "profiles[p].pod.volumes[0].ephemeral.volumeClaimTemplate.spec.resources[storage]: Required value"},
		{"image volume without reference", "pod: {volumes: [{name: v, image: {}}]}", "profiles[p].pod.volumes[0].image.reference: Required value"},
		{"iscsi without iqn", "pod: {volumes: [{name: v, iscsi: {targetPortal: 'host:3260'}}]}", "profiles[p].pod.volumes[0].iscsi.iqn: Required value"},
		{"nfs relative path", "pod: {volumes: [{name: v, nfs: {server: s, path: data}}]}", "profiles[p].pod.volumes[0].nfs.path"},
		{"csi without driver", "pod: {volumes: [{name: v, csi: {}}]}", "profiles[p].pod.volumes[0].csi.driver: Required value"},
		{"volume with two sources", "pod: {volumes: [{name: v, emptyDir: {}, hostPath: {path: /x}}]}", "profiles[p].pod.volumes[0]: Forbidden: exactly one volume source, found 2: emptyDir, hostPath"},
		{"volume without name", "pod: {volumes: [{emptyDir: {}}]}", "profiles[p].pod.volumes[0].name: Required value"},
		{"volume without source", "pod: {volumes: [{name: v}]}", "profiles[p].pod.volumes[0]: Required value: exactly one volume source"},
		{"subPath ..", "container: {volumeMounts: [{name: v, mountPath: /m, subPath: ..}]}", "profiles[p].container.volumeMounts[0].subPath: Invalid value"},
		{"absolute subPath", "container: {volumeMounts: [{name: v, mountPath: /m, subPath: /etc}]}", "must be a relative path"},
		{"mountPropagation Sideways", "container: {volumeMounts: [{name: v, mountPath: /m, mountPropagation: Sideways}]}", `profiles[p].container.volumeMounts[0].mountPropagation: Unsupported value: "Sideways"`},
		{"mountPropagation Bidirectional", "container: {volumeMounts: [{name: v, mountPath: /m, mountPropagation: Bidirectional}]}", "privileged"},
		{"recursiveReadOnly without readOnly", "container: {volumeMounts: [{name: v, mountPath: /m, recursiveReadOnly: Enabled}]}", "profiles[p].container.volumeMounts[0].recursiveReadOnly: Forbidden"},
		{"matchFields on a label", "pod: {affinity: {preferred: [{weight: 1, preference: {matchFields: [{key: zone, operator: In, values: [a]}]}}]}}", `profiles[p].pod.affinity.preferred[0].preference.matchFields[0].key: Unsupported value: "zone"`},
		{"Gt on a non-integer", "pod: {affinity: {required: [{key: gpu-memory, operator: Gt, values: ['40GB']}]}}", "profiles[p].pod.affinity.required[0].values[0]: Invalid value: \"40GB\": the scheduler cannot parse this"},
		{"preferred Lt on a non-integer", "pod: {affinity: {preferred: [{weight: 1, preference: {matchExpressions: [{key: k, operator: Lt, values: [x]}]}}]}}", "profiles[p].pod.affinity.preferred[0].preference.matchExpressions[0].values[0]: Invalid value: \"x\": the scheduler cannot parse this"},
		{"affinity value not a label value", "pod: {affinity: {required: [{key: k, operator: In, values: ['a b']}]}}", "profiles[p].pod.affinity.required[0].values[0]: Invalid value"},
		{"toleration value not a label value", "pod: {tolerations: [{key: k, value: 'a b'}]}", "profiles[p].pod.tolerations[0].value: Invalid value"},
		{"label value", "pod: {labels: {a: 'not valid!'}}", "profiles[p].pod.labels[a]: Invalid value"},
		{"nodeSelector key", "pod: {nodeSelector: {'a b': x}}", "profiles[p].pod.nodeSelector[a b]: Invalid value"},
		{"unknown standard resource", "container: {limits: {gpu: 1}}", "profiles[p].container.limits[gpu]: Invalid value"},
		{"gpuResource not a resource name", "gpuResource: gpu", "profiles[p].gpuResource: Invalid value"},
		{"bad quantity, with its path", "container: {limits: {nvidia.com/gpu: 1x}}", `profiles[p].container.limits[nvidia.com/gpu]: Invalid value: "1x": must be a quantity`},
		{"bad shm default, with its path", "derived: {shm: {fraction: 0.5, default: lots}}", `profiles[p].derived.shm.default: Invalid value: "lots"`},
		{"bad sizeLimit quantity", "pod: {volumes: [{name: v, emptyDir: {sizeLimit: big}}]}", `profiles[p].pod.volumes[0].emptyDir.sizeLimit: Invalid value: "big"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte("profiles:\n- name: p\n  "+tc.yaml+"\n"), testDomain)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
}

// Every problem of a file is reported in one error: bad quantities, unknown fields and invalid
// values together, each with its profile and path.
func TestEveryProblemIsReportedAtOnce(t *testing.T) {
	_, err := Parse([]byte(`profiles:
- name: a
  contianer: {}
  container:
    limits: {nvidia.com/gpu: 1x, example.com/fpga: 2y}
    env:
    - {name: A, valueFrom: {}}
    - {name: B, valueFrom: {fieldRef: {fieldPath: metadata.nmae}}}
    volumeMounts: [{name: v, mountPath: /m, subPath: .., mountPropagation: Sideways}]
- name: b
  derived: {shm: {fraction: 0.5, default: 8Gx}}
  pod:
    volumes:
    - {name: c, persistentVolumeClaim: {}}
    - {name: d, emptyDir: {sizeLimit: -1}}
    affinity: {required: [{key: m, operator: Gt, values: ['40GB']}]}
`), testDomain)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`unknown field "profiles[0].contianer"`,
		"profiles[a].container.limits[nvidia.com/gpu]",
		"profiles[a].container.limits[example.com/fpga]",
		"profiles[a].container.env[0].valueFrom",
		"profiles[a].container.env[1].valueFrom.fieldRef.fieldPath",
		"profiles[a].container.volumeMounts[0].subPath",
		"profiles[a].container.volumeMounts[0].mountPropagation",
		"profiles[b].derived.shm.default",
		"profiles[b].pod.volumes[0].persistentVolumeClaim.claimName",
		"profiles[b].pod.volumes[1].emptyDir.sizeLimit",
		"profiles[b].pod.affinity.required[0].values[0]",
		"11 problem(s)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

// Valid values of every kind pass: the rules refuse only what Kubernetes refuses.
func TestValidVolumesEnvAndAffinityAreAccepted(t *testing.T) {
	_, err := Parse([]byte(`profiles:
- name: p
  pod:
    volumes:
    - {name: a, emptyDir: {medium: Memory, sizeLimit: 1Gi}}
    - {name: b, hostPath: {path: /data, type: DirectoryOrCreate}}
    - {name: c, persistentVolumeClaim: {claimName: models, readOnly: true}}
    - {name: d, configMap: {name: cfg, defaultMode: 0440, items: [{key: k, path: sub/file}]}}
    - {name: e, secret: {secretName: s}}
    - {name: f, downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}, {path: cpu, resourceFieldRef: {containerName: c, resource: limits.cpu, divisor: 1m}}]}}
    - {name: g, projected: {sources: [{serviceAccountToken: {path: token, audience: vault}}, {configMap: {name: x}}]}}
    - {name: h, ephemeral: {volumeClaimTemplate: {spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 10Gi}}}}}}
    - {name: i, image: {reference: "registry.example.com/models/llama:v1"}}
    - {name: j, csi: {driver: secrets-store.csi.k8s.io, readOnly: true}}
    - {name: k, nfs: {server: nfs.example.com, path: /exports}}
    - {name: l, iscsi: {targetPortal: "10.0.0.1:3260", iqn: iqn.2001-04.com.example:storage, lun: 0}}
    tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}, {operator: Exists}]
    affinity:
      required: [{key: gpu-memory, operator: Gt, values: ["40"]}, {key: zone, operator: In, values: [a, b]}]
      preferred: [{weight: 10, preference: {matchFields: [{key: metadata.name, operator: In, values: [node-1]}]}}]
  container:
    limits: {nvidia.com/gpu: 1, memory: 8Gi, hugepages-2Mi: 1Gi}
    env:
    - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: TEAM, valueFrom: {fieldRef: {fieldPath: "metadata.labels['team']"}}}
    - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: TOKEN, valueFrom: {secretKeyRef: {name: hf, key: token, optional: true}}}
    volumeMounts:
    - {name: c, mountPath: /models, subPath: llama, readOnly: true, recursiveReadOnly: IfPossible}
    - {name: b, mountPath: /data, mountPropagation: HostToContainer}
`), testDomain)
	if err != nil {
		t.Fatal(err)
	}
}
