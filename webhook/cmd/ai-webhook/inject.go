package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/ai-webhook/ai-webhook/webhook/inject"
	"github.com/ai-webhook/ai-webhook/webhook/jsonpatch"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// injectCmd runs the admission decision on the Pods of a manifest file with no cluster: every
// document of the file, each Pod or workload Pod template defaulted as the API server would
// before the webhook sees it, so the decision is the cluster's.
func injectCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("inject", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "Pod or workload manifest (Deployment, Job, ...), YAML or JSON, one or more documents ('-' for stdin)")
	profilesFile := fs.String("profiles-file", "", "profile file (default: the shipped examples)")
	domain := fs.String("domain", profile.DefaultDomain, "prefix of the label and annotation keys")
	asPatch := fs.Bool("patch", false, "print the JSON patch the webhook would return, one per Pod document")
	explain := fs.Bool("explain", false, "print what happened to each setting of the profile, and why")
	factsFile := fs.String("facts", "", "cluster facts file (runtimeClasses, priorityClasses): a class not listed is not set, as in the cluster")
	kubeconfig := fs.String("kubeconfig", "", "read the cluster's RuntimeClasses and PriorityClasses from this cluster, read-only, instead of --facts")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *file == "" {
		return usageError{errors.New("inject: -f pod.yaml is required")}
	}
	if *asPatch && *explain {
		return usageError{errors.New("inject: choose one of --patch and --explain")}
	}
	if *factsFile != "" && *kubeconfig != "" {
		return usageError{errors.New("inject: choose one of --facts and --kubeconfig")}
	}
	facts, err := readFacts(*factsFile, *kubeconfig)
	if err != nil {
		return err
	}
	raw, err := readInput(*file, stdin)
	if err != nil {
		return err
	}
	set, err := readProfiles(*profilesFile, *domain)
	if err != nil {
		return err
	}
	docs, err := splitDocuments(raw)
	if err != nil {
		return fmt.Errorf("inject: %s: %w", *file, err)
	}
	keys := profile.KeysFor(*domain)
	var outputs [][]byte // the default view: every document, mutated or as it was
	var problems, skipped []error
	pods := 0
	for i, doc := range docs {
		d := &document{n: i + 1, of: len(docs), json: doc}
		res, err := d.admit(set, keys, facts)
		var notPod *notAPodError
		switch {
		case errors.As(err, &notPod):
			skipped = append(skipped, fmt.Errorf("%s: %w", d, err))
			fmt.Fprintf(stderr, "%s: skipped: %v\n", d, notPod)
			outputs = append(outputs, d.json)
			continue
		case err != nil:
			problems = append(problems, d.wrap(err))
			outputs = append(outputs, d.json)
			continue
		}
		pods++
		if res.Profile == nil && !*explain { // --explain says it on stdout
			fmt.Fprintf(stderr, "%s: no profile applied: %s\n", d, res.Reason)
		}
		switch {
		case *asPatch:
			if len(docs) > 1 {
				fmt.Fprintf(stderr, "%s: %d operation(s)\n", d, len(res.Patch))
			}
			b, err := json.MarshalIndent(res.Patch, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s\n", b)
		case *explain:
			if len(docs) > 1 {
				fmt.Fprintf(stdout, "%s:\n", d)
			}
			if err := printExplain(stdout, res); err != nil {
				return err
			}
		default:
			for _, w := range res.Warnings() {
				fmt.Fprintf(stderr, "Warning: %s%s\n", d.prefix(), w)
			}
			patched, err := applyPatch(d.defaulted, res)
			if err != nil {
				return d.wrap(fmt.Errorf("the patch does not apply (a bug: please report it): %w", err))
			}
			outputs = append(outputs, patched)
		}
	}
	if pods == 0 && len(problems) == 0 && len(skipped) > 0 {
		return fmt.Errorf("inject: %s: %w", *file, errors.Join(skipped...))
	}
	if !*asPatch && !*explain {
		if err := printDocuments(stdout, outputs); err != nil {
			return err
		}
	}
	return errors.Join(problems...)
}

// splitDocuments returns the non-empty documents of a YAML or JSON stream, as JSON.
func splitDocuments(raw []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	var docs [][]byte
	for {
		y, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		j, err := yaml.YAMLToJSON(y)
		if err != nil {
			return nil, fmt.Errorf("object %d is not YAML or JSON: %w", len(docs)+1, err)
		}
		if t := bytes.TrimSpace(j); len(t) == 0 || bytes.Equal(t, []byte("null")) {
			continue // only comments or separators
		}
		// A List (kubectl get -o yaml) is handled as its items, one document each.
		var list struct {
			Kind  string            `json:"kind"`
			Items []json.RawMessage `json:"items"`
		}
		if json.Unmarshal(j, &list) == nil && list.Kind == "List" {
			for _, it := range list.Items {
				docs = append(docs, it)
			}
			continue
		}
		docs = append(docs, j)
	}
	if len(docs) == 0 {
		return nil, errors.New("no document")
	}
	return docs, nil
}

// document is one object of the input file: a YAML document, or an item of a List. Messages
// call it "object N", N counting the file's objects in order (a comment-only document is none).
type document struct {
	n, of     int
	json      []byte // as written
	kind      string
	name      string
	defaulted []byte // with its Pod defaulted as the API server would; the patch applies to this
}

func (d *document) String() string {
	s := fmt.Sprintf("object %d", d.n)
	if d.kind != "" {
		s += " (" + strings.TrimSpace(d.kind+" "+d.name) + ")"
	}
	return s
}

// prefix names the document in messages when the file has more than one.
func (d *document) prefix() string {
	if d.of == 1 {
		return ""
	}
	return d.String() + ": "
}

// wrap names the object in an error about it, even when the file holds only one.
func (d *document) wrap(err error) error {
	var refused *inject.RefusedError
	if errors.As(err, &refused) {
		return fmt.Errorf("%s: the webhook would deny this Pod: %w", d, err)
	}
	return fmt.Errorf("inject: %s: %w", d, err)
}

// notAPodError marks a document that carries no Pod: it is skipped, not refused.
type notAPodError struct{ kind string }

func (e *notAPodError) Error() string {
	return fmt.Sprintf("kind %q: give a Pod or a workload with a Pod template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, PodTemplate)", e.kind)
}

// templatePaths locate the Pod template of the workload kinds, as JSON pointers.
var templatePaths = map[string]string{
	"Deployment": "/spec/template", "StatefulSet": "/spec/template", "DaemonSet": "/spec/template",
	"ReplicaSet": "/spec/template", "ReplicationController": "/spec/template", "Job": "/spec/template",
	"PodTemplate": "/template", "CronJob": "/spec/jobTemplate/spec/template",
}

// admit finds the document's Pod (the Pod itself or a workload's template, as its Pods will
// be admitted), applies the API defaults, and runs the webhook's decision on it. The patch
// paths are made relative to the document.
func (d *document) admit(set *profile.Set, keys profile.Keys, facts inject.Facts) (*inject.Result, error) {
	doc, err := decodeObject(d.json)
	if err != nil {
		return nil, err
	}
	d.kind, _ = doc["kind"].(string)
	meta, _ := doc["metadata"].(map[string]any)
	d.name, _ = meta["name"].(string)
	if d.kind == "" {
		return nil, errors.New("expected a YAML or JSON object with a kind (kind: Pod, Deployment, ...)")
	}
	var pod corev1.Pod
	var prefix string
	if d.kind == "Pod" {
		if err := typedJSON(d.json, &pod, nil); err != nil {
			return nil, fmt.Errorf("not a valid Pod: %w", err)
		}
	} else {
		var ok bool
		if prefix, ok = templatePaths[d.kind]; !ok {
			return nil, &notAPodError{kind: d.kind}
		}
		tmpl := lookup(doc, prefix)
		if tmpl == nil {
			return nil, fmt.Errorf("%s has no %s", d.kind, prefix)
		}
		b, _ := json.Marshal(tmpl)
		var t corev1.PodTemplateSpec
		if err := typedJSON(b, &t, pointerPath(prefix)); err != nil {
			return nil, fmt.Errorf("%s %s is not a valid Pod template: %w", d.kind, prefix, err)
		}
		pod = corev1.Pod{ObjectMeta: t.ObjectMeta, Spec: t.Spec}
	}
	profile.DefaultPod(&pod)
	// Write the defaulted Pod back, so the patch (computed on it) applies and the output shows
	// what the API server stores.
	var defaulted any
	if d.kind == "Pod" {
		defaulted = &pod
	} else {
		defaulted = &corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec}
	}
	b, err := json.Marshal(defaulted)
	if err != nil {
		return nil, err
	}
	var value map[string]any
	if err := json.Unmarshal(b, &value); err != nil {
		return nil, err
	}
	dropEmpty(value)
	if prefix == "" {
		doc = value
	} else {
		cut := strings.LastIndex(prefix, "/")
		parent := lookup(doc, prefix[:cut]).(map[string]any)
		parent[prefix[cut+1:]] = value
	}
	if d.defaulted, err = json.Marshal(doc); err != nil {
		return nil, err
	}
	if ns, _ := meta["namespace"].(string); ns != "" && pod.Namespace == "" {
		// A workload's Pods live in its namespace: cluster facts (templates) are looked up there.
		// Set after the output was written, which keeps the template as the user wrote it.
		pod.Namespace = ns
	}
	decide := &pod
	var claims *claimVolumes
	if d.kind == "StatefulSet" {
		if claims, err = statefulSetClaims(doc, d.name); err != nil {
			return nil, err
		}
		decide = claims.addTo(&pod)
	}
	res, err := inject.MutateWith(decide, set, keys, facts)
	if err != nil {
		return nil, err
	}
	if claims != nil {
		res.Patch = claims.forTemplate(res.Patch, len(pod.Spec.Volumes))
	}
	for i := range res.Patch {
		res.Patch[i].Path = prefix + res.Patch[i].Path
	}
	if res.Patch == nil {
		res.Patch = []jsonpatch.Operation{} // "[]", not "null": nothing to change
	}
	return res, nil
}

// pointerPath is the field path of a JSON pointer of object keys.
func pointerPath(pointer string) *field.Path {
	keys := strings.Split(strings.TrimPrefix(pointer, "/"), "/")
	return field.NewPath(keys[0], keys[1:]...)
}

// lookup follows a JSON pointer of object keys; nil when a step is missing.
func lookup(doc any, pointer string) any {
	if pointer == "" {
		return doc
	}
	for _, key := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		m, _ := doc.(map[string]any)
		if doc = m[key]; doc == nil {
			return nil
		}
	}
	return doc
}

// dropEmpty removes what marshalling a typed object adds but nobody wrote: a null
// creationTimestamp, an empty status, empty resources; the metadata object itself stays (the
// patch may add labels and annotations to it).
func dropEmpty(obj map[string]any) {
	if m, ok := obj["metadata"].(map[string]any); ok {
		if m["creationTimestamp"] == nil {
			delete(m, "creationTimestamp")
		}
	}
	if s, ok := obj["status"].(map[string]any); ok && len(s) == 0 {
		delete(obj, "status")
	}
	spec, _ := obj["spec"].(map[string]any)
	for _, list := range []string{"initContainers", "containers", "ephemeralContainers"} {
		cs, _ := spec[list].([]any)
		for _, c := range cs {
			if c, ok := c.(map[string]any); ok {
				if r, ok := c["resources"].(map[string]any); ok && len(r) == 0 {
					delete(c, "resources")
				}
			}
		}
	}
}

// decodeObject reads one document, numbers kept as written, and requires an object.
func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not YAML or JSON: %w", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("expected a YAML or JSON object with a kind, got %s", describe(v))
	}
	return obj, nil
}

func describe(v any) string {
	switch v.(type) {
	case []any:
		return "a list"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "true or false"
	default:
		return "nothing"
	}
}

// typedJSON decodes b into v strictly. Values of the wrong type are reported first, all of
// them, each with its path (under root) and in words, not as Go types.
func typedJSON(b []byte, v any, root *field.Path) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return err
	}
	if errs := profile.TypeErrors(generic, reflect.TypeOf(v).Elem(), root); len(errs) > 0 {
		return errs.ToAggregate()
	}
	strict, err := kjson.UnmarshalStrict(b, v)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// claimVolumes are the volumes the StatefulSet controller gives each Pod for the set's
// volumeClaimTemplates: a PVC volume per template, named as the template, claim
// <template>-<set>-<ordinal>, in front of the template's volumes, replacing one of the same name.
// The offline preview decides on the Pod with them (as the webhook sees it in the cluster) and
// leaves them out of the template it prints.
type claimVolumes struct {
	vols []corev1.Volume
	// docIndex maps an index in the decided Pod's volumes to the template's, -1 for a claim.
	docIndex []int
}

func statefulSetClaims(doc map[string]any, set string) (*claimVolumes, error) {
	raw := lookup(doc, "/spec/volumeClaimTemplates")
	if raw == nil {
		return &claimVolumes{}, nil
	}
	b, _ := json.Marshal(raw)
	var templates []corev1.PersistentVolumeClaim
	if err := typedJSON(b, &templates, field.NewPath("spec", "volumeClaimTemplates")); err != nil {
		return nil, fmt.Errorf("StatefulSet spec.volumeClaimTemplates: %w", err)
	}
	c := &claimVolumes{}
	for _, t := range templates {
		c.vols = append(c.vols, corev1.Volume{Name: t.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: t.Name + "-" + set + "-0"},
		}})
	}
	return c, nil
}

// addTo returns a copy of the template's Pod with the claim volumes, as the controller builds it.
func (c *claimVolumes) addTo(pod *corev1.Pod) *corev1.Pod {
	out := pod.DeepCopy()
	out.Spec.Volumes = slices.Clone(c.vols)
	c.docIndex = nil
	for range c.vols {
		c.docIndex = append(c.docIndex, -1)
	}
	for i, v := range pod.Spec.Volumes {
		if !slices.ContainsFunc(c.vols, func(cv corev1.Volume) bool { return cv.Name == v.Name }) {
			out.Spec.Volumes = append(out.Spec.Volumes, v)
			c.docIndex = append(c.docIndex, i)
		}
	}
	if len(out.Spec.Volumes) == 0 {
		out.Spec.Volumes = nil
	}
	return out
}

// forTemplate rewrites the patch's volume operations from the decided Pod's volume list to the
// template's (templateVolumes long): a replaced claim volume exists only in the controller's Pods, so
// that operation has no place in the template (--explain still shows the decision).
func (c *claimVolumes) forTemplate(ops []jsonpatch.Operation, templateVolumes int) []jsonpatch.Operation {
	const vols = "/spec/volumes"
	docVolumes := templateVolumes
	out := ops[:0]
	for _, op := range ops {
		rest, ok := strings.CutPrefix(op.Path, vols)
		switch {
		case !ok || (rest != "" && rest[0] != '/'):
		case rest == "":
			docVolumes++ // the Pod had no volumes: nor has the template
		case rest == "/-":
			if docVolumes == 0 { // the template has no list yet: the first addition creates it
				op.Path, op.Value = vols, []any{op.Value}
			}
			docVolumes++
		default:
			idxText, tail, _ := strings.Cut(rest[1:], "/")
			idx, err := strconv.Atoi(idxText)
			if err != nil {
				continue
			}
			to := templateVolumes + idx - len(c.docIndex) // a volume this patch appended
			if idx < len(c.docIndex) {
				to = c.docIndex[idx]
			}
			if to < 0 {
				continue
			}
			op.Path = vols + "/" + strconv.Itoa(to)
			if tail != "" {
				op.Path += "/" + tail
			}
		}
		out = append(out, op)
	}
	return out
}

// readProfiles parses the offline commands' --profiles-file, or the shipped examples without one.
func readProfiles(file, domain string) (*profile.Set, error) {
	profiles := profile.Examples
	if file != "" {
		var err error
		if profiles, err = os.ReadFile(file); err != nil {
			return nil, err
		}
	}
	return profile.Parse(profiles, domain)
}

func readInput(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(name)
}

func applyPatch(original []byte, res *inject.Result) ([]byte, error) {
	if len(res.Patch) == 0 {
		return original, nil
	}
	b, err := json.Marshal(res.Patch)
	if err != nil {
		return nil, err
	}
	p, err := jsonpatchapply.DecodePatch(b)
	if err != nil {
		return nil, err
	}
	return p.Apply(original)
}

// printDocuments prints the documents as one YAML stream.
func printDocuments(w io.Writer, docs [][]byte) error {
	for i, d := range docs {
		out, err := yaml.JSONToYAML(d)
		if err != nil {
			return err
		}
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if _, err := w.Write(out); err != nil {
			return err
		}
	}
	return nil
}

func printExplain(w io.Writer, res *inject.Result) error {
	if res.Profile == nil {
		_, err := fmt.Fprintf(w, "no profile applied: %s\n", res.Reason)
		return err
	}
	fmt.Fprintf(w, "profile %s: %d operation(s)\n\n", res.Profile.Stamp, len(res.Patch))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHERE\tFIELD\tKEY\tRESULT\tDETAIL")
	for _, it := range res.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", it.Where, it.Field, it.Key, it.Action, it.Detail)
	}
	return tw.Flush()
}
