package policy

// The steps of inject's apply, one JSONPatch mutation each, in its order. Comments name the
// inject function each step mirrors; read them side by side.

import (
	"path"
	"reflect"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

const mirrorPodAnnotation = "kubernetes.io/config.mirror"

// optIn is the CEL test of one map (annotations or labels) for the inject key: absent, or an
// opt-in word. inject.choose reads the value trimmed and lower-cased (strings.ToLower, which
// maps U+0130 to "i": the one non-ASCII rune that lowers into these words) and skips an opt-out
// word or refuses any other; either way no profile is applied.
func (c *compiler) optIn(m string) string {
	words := make([]string, len(profile.OptInValues))
	for i, w := range profile.OptInValues {
		words[i] = q(w)
	}
	v := m + "[" + q(c.keys.Inject) + "]"
	return or("!has("+m+")", "!("+q(c.keys.Inject)+" in "+m+")",
		v+`.replace("İ", "i").trim().lowerAscii() in [`+strings.Join(words, ", ")+"]")
}

// profileName is the profile the Pod names: the label, else the annotation (inject.choose).
func (c *compiler) profileName() string {
	k := q(c.keys.Profile)
	label := "object.metadata.labels[" + k + "]"
	ann := "object.metadata.annotations[" + k + "]"
	hasLabel := and("has(object.metadata.labels)", k+" in object.metadata.labels", label+` != ""`)
	hasAnn := and("has(object.metadata.annotations)", k+" in object.metadata.annotations")
	return cond(hasLabel, label, cond(hasAnn, ann, `""`))
}

func (c *compiler) matchConditions(isDefault bool) []admissionregistrationv1.MatchCondition {
	k := q(c.keys.Profile)
	disagree := and("has(object.metadata.labels)", k+" in object.metadata.labels", "object.metadata.labels["+k+`] != ""`,
		"has(object.metadata.annotations)", k+" in object.metadata.annotations", "object.metadata.annotations["+k+`] != ""`,
		"object.metadata.labels["+k+"] != object.metadata.annotations["+k+"]")
	chosen := c.profileName() + " == " + q(c.p.Name)
	if isDefault {
		chosen = or(chosen, and(c.profileName()+` == ""`, c.allContainers()+".exists(gc, "+c.requestsGPU("gc")+")"))
	}
	return []admissionregistrationv1.MatchCondition{
		{Name: "not-mirror-pod", Expression: "!has(object.metadata.annotations) || !(" + q(mirrorPodAnnotation) + " in object.metadata.annotations)"},
		{Name: "not-opted-out-by-annotation", Expression: c.optIn("object.metadata.annotations")},
		{Name: "not-opted-out-by-label", Expression: c.optIn("object.metadata.labels")},
		{Name: "label-and-annotation-agree", Expression: "!" + disagree},
		{Name: "profile-" + c.p.Name, Expression: chosen},
	}
}

// allContainers is every app and init container (inject.allContainers).
func (c *compiler) allContainers() string {
	return "(object.spec.containers + " + list("object.spec", "initContainers") + ")"
}

// gpuName tests a resource name (inject.isGPUResource, at compile time for the vendor).
func (c *compiler) gpuName(r string) string {
	gpu := string(c.p.GPUResource)
	vendor, _, ok := strings.Cut(gpu, "/")
	if !ok {
		return r + " == " + q(gpu)
	}
	return or(r+" == "+q(gpu), r+".startsWith("+q(vendor+"/gpu")+")", r+".startsWith("+q(vendor+"/mig-")+")")
}

// requestsGPU is inject.requestsGPU for the container e.
func (c *compiler) requestsGPU(e string) string {
	res := e + ".resources"
	nonZero := func(l string) string {
		m := res + "." + l
		return and("has("+m+")", m+".exists(gr, "+c.gpuName("gr")+" && sign(quantity("+m+"[gr])) != 0)")
	}
	return and("has("+res+")", or(and("has("+res+".claims)", "size("+res+".claims) > 0"), nonZero("limits"), nonZero("requests")))
}

// wanted is inject.targets' choice for a container e of the list: app containers, or init
// containers and sidecars as the profile says.
func (c *compiler) wanted(e, listName string) string {
	var want string
	switch c.p.Containers.Select {
	case profile.SelectNamed:
		names := make([]string, len(c.p.Containers.Names))
		for i, n := range c.p.Containers.Names {
			names[i] = q(n)
		}
		want = e + ".name in [" + strings.Join(names, ", ") + "]"
	case profile.SelectGPU:
		want = c.requestsGPU(e)
	default:
		want = "true"
	}
	if listName == "containers" {
		return want
	}
	sidecar := and("has("+e+".restartPolicy)", e+`.restartPolicy == "Always"`)
	kind := "false"
	switch t := c.p.Containers; {
	case t.Sidecars && t.InitContainers:
		kind = "true"
	case t.Sidecars:
		kind = sidecar
	case t.InitContainers:
		kind = "!" + sidecar
	}
	return and(kind, want)
}

// forContainers concatenates body's operations for each container of the lists that pick
// chooses (cc is the container, the path expression its JSON pointer).
func (c *compiler) forContainers(pick func(cc, listName string) string, body func(cc, pathExpr string) string) string {
	var parts []string
	for _, l := range []string{"containers", "initContainers"} {
		p := pick("cc", l)
		if p == "false" {
			continue
		}
		parts = append(parts, list("object.spec", l)+".transformList(ci, cc, "+p+", "+body("cc", q("/spec/"+l+"/")+" + string(ci)")+").flatten()")
	}
	if len(parts) == 0 {
		return "[]"
	}
	return strings.Join(parts, " + ")
}

func (c *compiler) forTargets(body func(cc, pathExpr string) string) string {
	return c.forContainers(c.wanted, body)
}

// appendOp adds v to the list at path, creating it when absent (inject.appendTo).
func appendOp(listExpr, pathExpr, v string) string {
	return cond("size("+listExpr+") == 0", "["+patch("add", pathExpr, "["+v+"]")+"]", "["+patch("add", pathExpr+` + "/-"`, v)+"]")
}

// firstIndex and lastIndex of the items of listExpr matching pred(x).
func indexes(listExpr, x, pred string) string {
	return listExpr + ".transformList(" + x + "i, " + x + ", " + pred + ", " + x + "i)"
}

func rv(v any) reflect.Value { return reflect.ValueOf(v) }

func (c *compiler) variables() []admissionregistrationv1.Variable {
	var vars []admissionregistrationv1.Variable
	if s := c.p.Derived.Shm; s != nil {
		vars = append(vars, c.shmVariables(s)...)
	}
	return vars
}

func (c *compiler) mutations() []admissionregistrationv1.Mutation {
	var exprs []string
	s := &c.p.Pod
	exprs = append(exprs,
		c.mapEntries("/metadata/labels", "object.metadata", "labels", s.Labels),
		c.mapEntries("/metadata/annotations", "object.metadata", "annotations", s.Annotations),
		c.stamp())
	exprs = append(exprs, c.scalar("runtimeClassName", s.RuntimeClassName, "", []string{"overhead"}))
	exprs = append(exprs, c.scalar("schedulerName", s.SchedulerName, corev1.DefaultSchedulerName, nil))
	exprs = append(exprs, c.scalar("priorityClassName", s.PriorityClassName, "", []string{"priority", "preemptionPolicy"}))
	exprs = append(exprs, c.mapEntries("/spec/nodeSelector", "object.spec", "nodeSelector", s.NodeSelector))
	for _, t := range s.Tolerations {
		exprs = append(exprs, c.toleration(t))
	}
	if len(s.Affinity.Required) > 0 {
		exprs = append(exprs, c.requiredTerm(s.Affinity.Required))
		for _, r := range s.Affinity.Required {
			exprs = append(exprs, c.required(r))
		}
	}
	for _, t := range s.Affinity.Preferred {
		exprs = append(exprs, c.preferred(t))
	}
	for _, v := range s.Volumes {
		exprs = append(exprs, c.volume(v))
	}
	// The container rules: inject runs them container by container, here rule by rule over
	// the containers. Each container's rules read only that container and the Pod-level
	// fields the earlier steps settled, so the order across containers does not matter.
	cs := &c.p.Container
	for _, r := range sortedResources(cs.Limits) {
		exprs = append(exprs, c.forTargets(func(cc, p string) string { return c.limit(cc, p, r, cs.Limits[r]) }))
	}
	for _, e := range cs.Env {
		exprs = append(exprs, c.forTargets(func(cc, p string) string { return c.env(cc, p, e) }))
	}
	if c.p.Derived.OMPNumThreadsFromCPU {
		exprs = append(exprs, c.forTargets(c.ompNumThreads))
	}
	for _, vm := range cs.VolumeMounts {
		exprs = append(exprs, c.forTargets(func(cc, p string) string { return c.mount(cc, p, vm) }))
	}
	if s := c.p.Derived.Shm; s != nil {
		exprs = append(exprs, c.shm(s))
	}
	if c.p.Derived.HideGPUsFromNonGPUContainers {
		void := corev1.EnvVar{Name: profile.EnvNvidiaVisibleDevices, Value: "void"}
		exprs = append(exprs, c.forContainers(func(cc, _ string) string { return "!" + c.requestsGPU(cc) },
			func(cc, p string) string { return c.env(cc, p, void) }))
	}
	var out []admissionregistrationv1.Mutation
	for _, e := range exprs {
		if e == "" || e == "[]" {
			continue
		}
		out = append(out, admissionregistrationv1.Mutation{PatchType: admissionregistrationv1.PatchTypeJSONPatch,
			JSONPatch: &admissionregistrationv1.JSONPatch{Expression: e}})
	}
	return out
}

func sortedResources(l corev1.ResourceList) []corev1.ResourceName {
	out := make([]corev1.ResourceName, 0, len(l))
	for r := range l {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// mapEntries is inject.mapEntries: add what is absent; replace a different value when enforced.
func (c *compiler) mapEntries(pathStr, parent, name string, want map[string]string) string {
	if len(want) == 0 {
		return ""
	}
	fieldName := strings.TrimPrefix(pathStr, "/metadata/")
	fieldName = strings.TrimPrefix(fieldName, "/spec/")
	m := parent + "." + name
	var ops []string
	for _, k := range sortedKeys(want) {
		set := "!(" + q(k) + " in " + m + ")"
		if c.enforced(fieldName, k) {
			set = or(set, m+"["+q(k)+"] != "+q(want[k]))
		}
		ops = append(ops, cond(set, "["+patch("add", q(pathStr+"/"+escape(k)), q(want[k]))+"]", "[]"))
	}
	all := make([]string, 0, len(want))
	for _, k := range sortedKeys(want) {
		all = append(all, q(k)+": "+q(want[k]))
	}
	empty := or("!has("+m+")", "size("+m+") == 0")
	return cond(empty, "["+patch("add", q(pathStr), "{"+strings.Join(all, ", ")+"}")+"]", strings.Join(ops, " + "))
}

// stamp is inject's stamp: the injected annotation, always ours.
func (c *compiler) stamp() string {
	m := "object.metadata.annotations"
	k := q(c.keys.Injected)
	return cond(or("!has("+m+")", "size("+m+") == 0"),
		"["+patch("add", q("/metadata/annotations"), "{"+k+": "+q(c.p.Stamp)+"}")+"]",
		cond(and(k+" in "+m, m+"["+k+"] == "+q(c.p.Stamp)), "[]",
			"["+patch("add", q("/metadata/annotations/"+escape(c.keys.Injected)), q(c.p.Stamp))+"]"))
}

// scalar is inject.scalar for a Pod-level string field; drop lists the fields the API server
// resolved from the old value (inject.dropOverhead, inject.dropResolvedPriority).
func (c *compiler) scalar(name, want, apiDefault string, drop []string) string {
	if want == "" {
		return ""
	}
	have := or0("object.spec", name, `""`)
	set := have + " != " + q(want) // enforced: whatever the Pod has
	if !c.enforced(name, "") {
		unset := []string{have + ` == ""`} // the API server's default is no user choice
		if apiDefault != "" {
			unset = append(unset, have+" == "+q(apiDefault))
		}
		set = and(set, or(unset...))
	}
	ops := []string{"[" + patch("add", q("/spec/"+name), q(want)) + "]"}
	for _, d := range drop {
		present := "has(object.spec." + d + ")"
		if d == "overhead" {
			present = and(present, "size(object.spec.overhead) > 0")
		}
		ops = append(ops, cond(present, "["+patch("remove", q("/spec/"+d), "")+"]", "[]"))
	}
	return cond(set, strings.Join(ops, " + "), "[]")
}

// toleration is inject.tolerations for one of the profile's.
func (c *compiler) toleration(t corev1.Toleration) string {
	tols := list("object.spec", "tolerations")
	same := tols + ".exists(tx, " + same("tx", rv(t), sameOpts{}) + ")"
	idx := indexes(tols, "tx", and(or0("tx", "key", `""`)+" == "+q(t.Key), or0("tx", "effect", `""`)+" == "+q(string(t.Effect))))
	v := lit(rv(t), "Object.spec.tolerations")
	replace := "[]"
	if c.enforced("tolerations", t.Key) {
		replace = "[" + patch("replace", `"/spec/tolerations/" + string(`+idx+"[0])", v) + "]"
	}
	return cond(same, "[]", cond("size("+idx+") > 0", replace, appendOp(tols, q("/spec/tolerations"), v)))
}

const requiredPath = "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution"

// nodeAffinityMember is inject.addNodeAffinityMember: set one member, adding spec.affinity and
// its nodeAffinity first when absent.
func nodeAffinityMember(member, value string) string {
	return cond("!has(object.spec.affinity)",
		"["+patch("add", q("/spec/affinity"), "Object.spec.affinity{nodeAffinity: Object.spec.affinity.nodeAffinity{"+member+": "+value+"}}")+"]",
		cond("!has(object.spec.affinity.nodeAffinity)",
			"["+patch("add", q("/spec/affinity/nodeAffinity"), "Object.spec.affinity.nodeAffinity{"+member+": "+value+"}")+"]",
			"["+patch("add", q("/spec/affinity/nodeAffinity/"+member), value)+"]"))
}

const requiredTerms = "object.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"

// hasRequiredTerms: the Pod has required node selector terms.
func hasRequiredTerms() string {
	return and("has(object.spec.affinity)", "has(object.spec.affinity.nodeAffinity)",
		"has("+requiredTerms+")", "has("+requiredTerms+".nodeSelectorTerms)", "size("+requiredTerms+".nodeSelectorTerms) > 0")
}

// requiredTerm is the first branch of inject.requiredAffinity: a Pod without required terms
// gets one of the profile's requirements.
func (c *compiler) requiredTerm(want []corev1.NodeSelectorRequirement) string {
	tn := "Object.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
	sel := tn + "{nodeSelectorTerms: [" + tn + ".nodeSelectorTerms{matchExpressions: " +
		lit(rv(want), tn+".nodeSelectorTerms.matchExpressions") + "}]}"
	return cond(hasRequiredTerms(), "[]", nodeAffinityMember("requiredDuringSchedulingIgnoredDuringExecution", sel))
}

// required is the rest of inject.requiredAffinity for one requirement: ANDed into every term
// that does not constrain its key.
func (c *compiler) required(r corev1.NodeSelectorRequirement) string {
	v := lit(rv(r), "Object.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms.matchExpressions")
	exprs := list("rt", "matchExpressions")
	p := q(requiredPath+"/nodeSelectorTerms/") + " + string(ri) + " + q("/matchExpressions")
	per := requiredTerms + ".nodeSelectorTerms.transformList(ri, rt, !" + exprs + ".exists(rx, rx.key == " + q(r.Key) + "), " +
		appendOp(exprs, p, v) + ").flatten()"
	return cond(hasRequiredTerms(), per, "[]")
}

// preferred is inject.preferredAffinity for one term: appended unless an identical one exists.
func (c *compiler) preferred(t corev1.PreferredSchedulingTerm) string {
	member := "preferredDuringSchedulingIgnoredDuringExecution"
	have := "object.spec.affinity.nodeAffinity." + member
	present := and("has(object.spec.affinity)", "has(object.spec.affinity.nodeAffinity)", "has("+have+")", "size("+have+") > 0")
	v := lit(rv(t), "Object.spec.affinity.nodeAffinity."+member)
	return cond(present,
		cond(have+".exists(px, "+same("px", rv(t), sameOpts{})+")", "[]", "["+patch("add", q("/spec/affinity/nodeAffinity/"+member+"/-"), v)+"]"),
		nodeAffinityMember(member, "["+v+"]"))
}

// volume is inject.volume: added when the Pod has none of that name; replaced when it differs
// and volumes are enforced. (A Pod volume equal to the profile's is kept.)
func (c *compiler) volume(v corev1.Volume) string {
	vols := list("object.spec", "volumes")
	idx := indexes(vols, "vx", "vx.name == "+q(v.Name))
	l := lit(rv(v), "Object.spec.volumes")
	replace := "[]"
	if c.enforced("volumes", v.Name) {
		replace = cond(same(vols+"["+idx+"[0]]", rv(v), sameOpts{}), "[]", "["+patch("replace", `"/spec/volumes/" + string(`+idx+"[0])", l)+"]")
	}
	return cond("size("+idx+") == 0", appendOp(vols, q("/spec/volumes"), l), replace)
}

// foreign is inject's m.foreign for a volume name: the Pod keeps a volume of that name as its
// own (defined unlike the profile's, or, unless volumes are enforced, mounted by a container
// where the profile does not mount it). Only the profile's volumes can be foreign.
func (c *compiler) foreign(name string) string {
	i := slices.IndexFunc(c.p.Pod.Volumes, func(v corev1.Volume) bool { return v.Name == name })
	if i < 0 {
		return "false"
	}
	var paths []string
	for _, vm := range c.p.Container.VolumeMounts {
		if vm.Name == name {
			paths = append(paths, path.Clean(vm.MountPath))
		}
	}
	return c.ownedElsewhere(name, same("fv", rv(c.p.Pod.Volumes[i]), sameOpts{}), paths)
}

// ownedElsewhere: the Pod has a volume name that is not the profile's (same is false for fv),
// or, unless volumes are enforced, one mounted at a path outside paths (inject.ownVolume).
func (c *compiler) ownedElsewhere(name, sameVol string, paths []string) string {
	elsewhere := "false"
	if !c.enforced("volumes", name) {
		var at []string
		for _, p := range paths {
			at = append(at, cleanIs("fm.mountPath", p))
		}
		elsewhere = c.allContainers() + ".exists(fk, " + list("fk", "volumeMounts") + ".exists(fm, fm.name == " + q(name) +
			" && !" + or(at...) + "))"
	}
	return list("object.spec", "volumes") + ".exists(fv, fv.name == " + q(name) + " && " + or("!"+sameVol, elsewhere) + ")"
}

func (c *compiler) podHasVolume(name string) string {
	return list("object.spec", "volumes") + ".exists(hv, hv.name == " + q(name) + ")"
}

// limit is inject.limit for one resource of a container.
func (c *compiler) limit(cc, p string, r corev1.ResourceName, want resource.Quantity) string {
	R := q(string(r))
	Q := q(want.String())
	res := cc + ".resources"
	hasL := and("has("+res+")", "has("+res+".limits)", R+" in "+res+".limits")
	hasR := and("has("+res+")", "has("+res+".requests)", R+" in "+res+".requests")
	have, req := res+".limits["+R+"]", res+".requests["+R+"]"
	eq := func(e string) string { return "(quantity(" + e + ").compareTo(quantity(" + Q + ")) == 0)" }
	mustChange := "!" + eq(req)
	switch r {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		mustChange = "quantity(" + req + ").isGreaterThan(quantity(" + Q + "))"
	}
	podRoom := and("has(object.spec.resources)", or(and("has(object.spec.resources.limits)", R+" in object.spec.resources.limits"),
		and("has(object.spec.resources.requests)", R+" in object.spec.resources.requests")))
	er := escape(string(r))
	replaceLimit := patch("replace", p+" + "+q("/resources/limits/"+er), Q)
	replaceRequest := patch("replace", p+" + "+q("/resources/requests/"+er), Q)
	enforced := c.enforced("limits", string(r))
	empty := func(m string) string {
		return "!" + and("has("+res+")", "has("+res+"."+m+")", "size("+res+"."+m+") > 0")
	}
	addLimit := cond(and(empty("limits"), empty("requests"), empty("claims")),
		"["+patch("add", p+` + "/resources"`, "{\"limits\": {"+R+": "+Q+"}}")+"]",
		cond(empty("limits"), "["+patch("add", p+` + "/resources/limits"`, "{"+R+": "+Q+"}")+"]",
			"["+patch("add", p+" + "+q("/resources/limits/"+er), Q)+"]"))
	addRequest := cond(hasR, "[]", cond(empty("requests"), "["+patch("add", p+` + "/resources/requests"`, "{"+R+": "+Q+"}")+"]",
		"["+patch("add", p+" + "+q("/resources/requests/"+er), Q)+"]"))
	ifLimit := "[]"
	if enforced {
		ifLimit = "[" + replaceLimit + "] + " + cond(and(hasR, "!"+eq(req), or("quantity("+req+").compareTo(quantity("+have+")) == 0", mustChange)),
			"["+replaceRequest+"]", "[]")
	}
	otherGPU := "false"
	if !enforced && c.isGPUResource(r) {
		otherGPU = and("!"+hasR, c.requestsGPU(cc))
	}
	otherRequest := and(hasR, "!"+eq(req))
	rest := cond(otherRequest, cond(mustChange, "["+replaceRequest+"]", "[]"), "[]") + " + " + addLimit + " + " + addRequest
	if !enforced {
		rest = cond(otherRequest, "[]", addLimit+" + "+addRequest)
	}
	return cond(and(hasL, eq(have)), "[]", cond(podRoom, "[]", cond(hasL, ifLimit, cond(otherGPU, "[]", rest))))
}

func (c *compiler) isGPUResource(r corev1.ResourceName) bool {
	gpu := string(c.p.GPUResource)
	if string(r) == gpu {
		return true
	}
	vendor, _, ok := strings.Cut(gpu, "/")
	rv, name, rok := strings.Cut(string(r), "/")
	return ok && rok && rv == vendor && (strings.HasPrefix(name, "gpu") || strings.HasPrefix(name, "mig-"))
}

// env is inject.envFrom for a literal variable.
func (c *compiler) env(cc, p string, e corev1.EnvVar) string {
	return c.envValue(cc, p, e.Name, func(x string) string { return same(x, rv(e), sameOpts{}) }, lit(rv(e), "Object.spec.containers.env"))
}

// envValue is inject.envFrom: sameAs tests the container's entry ex; v is the entry to write.
func (c *compiler) envValue(cc, p, name string, sameAs func(string) string, v string) string {
	envs := list(cc, "env")
	idx := indexes(envs, "ex", "ex.name == "+q(name))
	last := idx + "[size(" + idx + ") - 1]"
	kept := and("size("+idx+") > 0", sameAs(envs+"["+last+"]"))
	enforced := c.enforced("env", name)
	hostNet := "false"
	if strings.HasSuffix(name, "_SOCKET_IFNAME") {
		hostNet = and("has(object.spec.hostNetwork)", "object.spec.hostNetwork")
	}
	replace := "[]"
	if enforced {
		replace = "[" + patch("replace", p+` + "/env/" + string(`+last+")", v) + "]"
	}
	add := appendOp(envs, p+` + "/env"`, v)
	if !enforced {
		fromSrc := list(cc, "envFrom") + ".exists(ef, " + q(name) + ".startsWith(" + or0("ef", "prefix", `""`) + "))"
		add = cond(fromSrc, "[]", add)
	}
	return cond(kept, "[]", cond(hostNet, "[]", cond("size("+idx+") > 0", replace, add)))
}

// ompNumThreads is inject.ompNumThreads: the whole CPUs of the container's cpu limit, else of
// the Pod-level one, at least 1. Go computes max(MilliValue/1000, 1) with MilliValue rounding
// up: n is the largest integer with 1000n <= ceil(1000 q), that is (1000n - 1)m < q, checked
// exactly with quantities around the float estimate.
func (c *compiler) ompNumThreads(cc, p string) string {
	own := cc + ".resources.limits.cpu"
	hasOwn := and("has("+cc+".resources)", "has("+cc+".resources.limits)", "has("+own+")", "sign(quantity("+own+")) != 0")
	pod := "object.spec.resources.limits.cpu"
	hasPod := and("has(object.spec.resources)", "has(object.spec.resources.limits)", "has("+pod+")", "sign(quantity("+pod+")) != 0")
	cpu := cond(hasOwn, own, pod)
	est := "int(quantity(" + cpu + ").asApproximateFloat())"
	cands := "[" + est + " + 1, " + est + ", " + est + " - 1].filter(on, on >= 1 && quantity(string(on * 1000 - 1) + \"m\").isLessThan(quantity(" + cpu + ")))"
	n := "string(" + cond("size("+cands+") > 0", cands+"[0]", "1") + ")"
	sameAs := func(x string) string {
		return and(x+".name == "+q(profile.EnvOMPNumThreads), or0(x, "value", `""`)+" == "+n, "!has("+x+".valueFrom)")
	}
	v := "Object.spec.containers.env{name: " + q(profile.EnvOMPNumThreads) + ", value: " + n + "}"
	return cond(or(hasOwn, hasPod), c.envValue(cc, p, profile.EnvOMPNumThreads, sameAs, v), "[]")
}

// mountDecision is inject.mount: the operations for container cc and whether it mounts the
// volume afterwards. coming says the volume is added after the mounts; foreign is the CEL test
// that the Pod keeps the volume as its own.
func (c *compiler) mountDecision(cc, p string, vm corev1.VolumeMount, coming, foreign string) (ops, mounts string) {
	mounts0 := list(cc, "volumeMounts")
	clean := path.Clean(vm.MountPath)
	idx := indexes(mounts0, "mx", cleanIs("mx.mountPath", clean))
	first := mounts0 + "[" + idx + "[0]]"
	kept := and("size("+idx+") > 0", same(first, rv(vm), sameOpts{cleanMountPath: true}))
	hostIPC := "false"
	if clean == "/dev/shm" {
		hostIPC = and("has(object.spec.hostIPC)", "object.spec.hostIPC")
	}
	lacks := and("!"+coming, "!"+c.podHasVolume(vm.Name))
	v := lit(rv(vm), "Object.spec.containers.volumeMounts")
	enforced := c.enforced("volumeMounts", vm.MountPath)
	replaceOps, replaceMounts := "[]", first+".name == "+q(vm.Name)
	if enforced {
		replaceOps, replaceMounts = "["+patch("replace", p+` + "/volumeMounts/" + string(`+idx+"[0])", v)+"]", "true"
	}
	ops = cond(kept, "[]", cond(hostIPC, "[]", cond(lacks, "[]", cond(foreign, "[]",
		cond("size("+idx+") > 0", replaceOps, appendOp(mounts0, p+` + "/volumeMounts"`, v))))))
	mounts = cond(kept, "true", cond(hostIPC, "false", cond(lacks, "false", cond(foreign, "false",
		cond("size("+idx+") > 0", replaceMounts, "true")))))
	return ops, mounts
}

func (c *compiler) mount(cc, p string, vm corev1.VolumeMount) string {
	ops, _ := c.mountDecision(cc, p, vm, "false", c.foreign(vm.Name))
	return ops
}
