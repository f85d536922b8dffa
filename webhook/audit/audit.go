// Package audit finds the running Pods the current profiles would change: admitted while the
// webhook was not in the path (no stamp), under an older version of their profile (another
// hash), or under a profile that no longer exists. It is pure: the caller reads the cluster
// and passes plain values in; the report groups the Pods by the workload that owns them.
package audit

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ai-webhook/ai-webhook/webhook/inject"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// Why a Pod is listed.
const (
	Unstamped   = "no stamp"     // asks for a profile but was admitted without the webhook
	OldHash     = "old profile"  // stamped by another version (or another profile) than today's
	ProfileGone = "profile gone" // stamped by a profile the profile file no longer has
	WouldRefuse = "would refuse" // the webhook would refuse this Pod today (e.g. label and annotation disagree)
)

// Ref names a Kubernetes object.
type Ref struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

func (r Ref) String() string { return r.Kind + " " + r.Namespace + "/" + r.Name }

// Input is what the caller read from the cluster.
type Input struct {
	Set  *profile.Set
	Keys profile.Keys
	// Pods are the Pods of the selected namespaces (see Selects).
	Pods []corev1.Pod
	// Parents maps a ReplicaSet or Job to the Deployment or CronJob that controls it; an owner
	// without an entry is the workload itself.
	Parents map[Ref]Ref
}

// Pod is one listed Pod.
type Pod struct {
	Name   string `json:"name"`
	Why    string `json:"why"`
	Detail string `json:"detail"`
	Stamp  string `json:"stamp,omitempty"`
}

// Group is the listed Pods of one workload.
type Group struct {
	Workload Ref   `json:"workload"`
	Pods     []Pod `json:"pods"`
	// Changes are the applied and enforced rows of the decision on the first listed Pod: what
	// a Pod created today would get that this one lacks.
	Changes   []inject.Item `json:"changes"`
	ChangesOf string        `json:"changesOf"` // the Pod Changes were decided on
	// Roll says how to get Pods admitted under today's profiles.
	Roll string `json:"roll"`
}

// Report lists the groups in workload order; Checked counts the Pods looked at.
type Report struct {
	Checked int     `json:"checked"`
	Groups  []Group `json:"groups"`
}

// Run classifies every Pod and groups the out-of-date ones by owning workload.
func Run(in Input) Report {
	rep := Report{Checked: len(in.Pods)}
	byRef := map[Ref]int{}
	for i := range in.Pods {
		pod := &in.Pods[i]
		entry, changes, ok := classify(pod, in.Set, in.Keys)
		if !ok {
			continue
		}
		w := workload(pod, in.Parents)
		gi, seen := byRef[w]
		if !seen {
			gi = len(rep.Groups)
			byRef[w] = gi
			rep.Groups = append(rep.Groups, Group{Workload: w, Changes: changes, ChangesOf: pod.Name, Roll: roll(w, pod.Name)})
		}
		rep.Groups[gi].Pods = append(rep.Groups[gi].Pods, entry)
	}
	slices.SortFunc(rep.Groups, func(a, b Group) int {
		return strings.Compare(a.Workload.Namespace+"\x00"+a.Workload.Kind+"\x00"+a.Workload.Name,
			b.Workload.Namespace+"\x00"+b.Workload.Kind+"\x00"+b.Workload.Name)
	})
	for _, g := range rep.Groups {
		slices.SortFunc(g.Pods, func(a, b Pod) int { return strings.Compare(a.Name, b.Name) })
	}
	return rep
}

// classify decides one Pod by running today's decision on a copy and comparing its stamp with
// the Pod's. ok is false for a Pod that is current or that no profile applies to.
func classify(pod *corev1.Pod, set *profile.Set, keys profile.Keys) (Pod, []inject.Item, bool) {
	stamp := pod.Annotations[keys.Injected]
	entry := Pod{Name: pod.Name, Stamp: stamp}
	if name, _, _ := strings.Cut(stamp, profile.StampSep); stamp != "" {
		if _, ok := set.Get(name); !ok {
			entry.Why, entry.Detail = ProfileGone, fmt.Sprintf("stamped %s; profile %q is not in the profile file", stamp, name)
			return entry, nil, true
		}
	}
	res, err := inject.Mutate(pod.DeepCopy(), set, keys)
	var refused *inject.RefusedError
	switch {
	case errors.As(err, &refused):
		entry.Why, entry.Detail = WouldRefuse, refused.Reason
		return entry, nil, true
	case err != nil:
		entry.Why, entry.Detail = WouldRefuse, err.Error()
		return entry, nil, true
	case res.Profile == nil, stamp == res.Profile.Stamp:
		return entry, nil, false
	case stamp == "":
		entry.Why, entry.Detail = Unstamped, "admitted without the webhook; today "+res.Profile.Stamp
	default:
		entry.Why, entry.Detail = OldHash, fmt.Sprintf("stamped %s; today %s", stamp, res.Profile.Stamp)
	}
	return entry, changes(res.Items), true
}

// changes keeps the rows that change the Pod.
func changes(items []inject.Item) []inject.Item {
	var out []inject.Item
	for _, it := range items {
		if it.Action == inject.Applied || it.Action == inject.Enforced {
			out = append(out, it)
		}
	}
	return out
}

// workload is the object to roll for a Pod: its controller (or first) owner, lifted from a
// ReplicaSet to its Deployment and from a Job to its CronJob; the Pod itself when it has none.
func workload(pod *corev1.Pod, parents map[Ref]Ref) Ref {
	owner := Owner(pod.Namespace, pod.OwnerReferences)
	if owner == nil {
		return Ref{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name}
	}
	if p, ok := parents[*owner]; ok {
		return p
	}
	return *owner
}

// Owner is the controller among refs, else the first, else nil.
func Owner(namespace string, refs []metav1.OwnerReference) *Ref {
	for _, r := range refs {
		if r.Controller != nil && *r.Controller {
			return &Ref{Kind: r.Kind, Namespace: namespace, Name: r.Name}
		}
	}
	if len(refs) > 0 {
		return &Ref{Kind: refs[0].Kind, Namespace: namespace, Name: refs[0].Name}
	}
	return nil
}

// roll says how to replace a workload's Pods. Pod specs are immutable and the webhook only
// sees CREATE, so every way is a new Pod.
func roll(w Ref, podName string) string {
	switch w.Kind {
	case "Deployment", "StatefulSet", "DaemonSet":
		return fmt.Sprintf("kubectl rollout restart %s/%s -n %s", strings.ToLower(w.Kind), w.Name, w.Namespace)
	case "ReplicaSet", "ReplicationController":
		return fmt.Sprintf("kubectl delete pod -n %s <its listed Pods> (the %s creates new ones)", w.Namespace, w.Kind)
	case "CronJob":
		return fmt.Sprintf("the CronJob's next Job gets the profile; a running Job must be recreated (delete it and create it again from its manifest, or kubectl create job --from=cronjob/%s -n %s)", w.Name, w.Namespace)
	case "Job":
		return fmt.Sprintf("the Job must be recreated: delete job/%s -n %s and create it again from its manifest", w.Name, w.Namespace)
	case "Pod":
		return fmt.Sprintf("the Pod must be recreated: delete pod/%s -n %s and create it again from its manifest", podName, w.Namespace)
	}
	return fmt.Sprintf("recreate its Pods through %s %s/%s", w.Kind, w.Namespace, w.Name)
}

// Selects reports whether a namespace's labels match the webhook's namespaceSelector, as the
// API server decides (no selector: every namespace).
func Selects(w *admissionregistrationv1.MutatingWebhook, namespaceLabels map[string]string) (bool, error) {
	return matches(w.NamespaceSelector, namespaceLabels)
}

// SelectsObject reports whether a Pod's labels match the webhook's objectSelector.
func SelectsObject(w *admissionregistrationv1.MutatingWebhook, podLabels map[string]string) (bool, error) {
	return matches(w.ObjectSelector, podLabels)
}

func matches(sel *metav1.LabelSelector, set map[string]string) (bool, error) {
	if sel == nil {
		return true, nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	return s.Matches(labels.Set(set)), nil
}

// FindWebhook picks the named webhook of a configuration, or its only one when name is empty.
func FindWebhook(cfg *admissionregistrationv1.MutatingWebhookConfiguration, name string) (*admissionregistrationv1.MutatingWebhook, error) {
	var names []string
	for i := range cfg.Webhooks {
		if cfg.Webhooks[i].Name == name || (name == "" && len(cfg.Webhooks) == 1) {
			return &cfg.Webhooks[i], nil
		}
		names = append(names, cfg.Webhooks[i].Name)
	}
	if name == "" {
		return nil, fmt.Errorf("MutatingWebhookConfiguration %s has %d webhooks (%s): name one with --webhook", cfg.Name, len(names), strings.Join(names, ", "))
	}
	return nil, fmt.Errorf("MutatingWebhookConfiguration %s has no webhook %q (it has: %s)", cfg.Name, name, strings.Join(names, ", "))
}

// ProfilesSource finds where a webhook Deployment reads its profiles: the ConfigMap and key
// behind the container's --profiles-file, and its --domain ("" when not given). container
// names the server's container ("" for the only one).
func ProfilesSource(spec *corev1.PodSpec, container string) (configMap, key, domain string, err error) {
	var c *corev1.Container
	for i := range spec.Containers {
		if spec.Containers[i].Name == container || (container == "" && len(spec.Containers) == 1) {
			c = &spec.Containers[i]
		}
	}
	if c == nil {
		return "", "", "", fmt.Errorf("no container %q in the webhook's Pod template", container)
	}
	var file string
	args := append(slices.Clone(c.Command), c.Args...)
	for i, a := range args {
		for _, flag := range []string{"--profiles-file", "-profiles-file", "--domain", "-domain"} {
			v, ok := strings.CutPrefix(a, flag+"=")
			if !ok && a == flag && i+1 < len(args) {
				v, ok = args[i+1], true
			}
			if !ok {
				continue
			}
			if strings.HasSuffix(flag, "domain") {
				domain = v
			} else {
				file = v
			}
		}
	}
	if file == "" {
		return "", "", "", fmt.Errorf("container %s has no --profiles-file argument", c.Name)
	}
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		if m.SubPath != "" {
			rel = m.SubPath + "/" + rel
		}
		for _, v := range spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			key = rel
			for _, it := range v.ConfigMap.Items {
				if it.Path == rel {
					key = it.Key
				}
			}
			return v.ConfigMap.Name, key, domain, nil
		}
	}
	return "", "", "", fmt.Errorf("--profiles-file %s of container %s is not on a ConfigMap volume", file, c.Name)
}
