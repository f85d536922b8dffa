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
	"strings"
	"text/tabwriter"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
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
	profiles := profile.Examples
	if *profilesFile != "" {
		if profiles, err = os.ReadFile(*profilesFile); err != nil {
			return err
		}
	}
	set, err := profile.Parse(profiles, *domain)
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
			skipped = append(skipped, err)
			fmt.Fprintf(stderr, "%s: skipped: %v\n", d, notPod)
			outputs = append(outputs, d.json)
			continue
		case err != nil:
			problems = append(problems, d.wrap(err))
			outputs = append(outputs, d.json)
			continue
		}
		pods++
		if res.Profile == nil {
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
			return nil, fmt.Errorf("document %d is not YAML or JSON: %w", len(docs)+1, err)
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

// document is one document of the input file.
type document struct {
	n, of     int
	json      []byte // as written
	kind      string
	name      string
	defaulted []byte // with its Pod defaulted as the API server would; the patch applies to this
}

func (d *document) String() string {
	s := fmt.Sprintf("document %d", d.n)
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

func (d *document) wrap(err error) error {
	var refused *inject.RefusedError
	if errors.As(err, &refused) {
		return fmt.Errorf("%sthe webhook would deny this Pod: %w", d.prefix(), err)
	}
	return fmt.Errorf("inject: %s%w", d.prefix(), err)
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
	var meta struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(d.json, &meta); err != nil {
		return nil, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	d.kind, d.name = meta.Kind, meta.Metadata.Name
	var doc map[string]any
	if err := json.Unmarshal(d.json, &doc); err != nil {
		return nil, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	var pod corev1.Pod
	var prefix string
	if d.kind == "Pod" {
		if err := strictJSON(d.json, &pod); err != nil {
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
		if err := strictJSON(b, &t); err != nil {
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
	res, err := inject.MutateWith(&pod, set, keys, facts)
	if err != nil {
		return nil, err
	}
	for i := range res.Patch {
		res.Patch[i].Path = prefix + res.Patch[i].Path
	}
	if res.Patch == nil {
		res.Patch = []jsonpatch.Operation{} // "[]", not "null": nothing to change
	}
	return res, nil
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

func strictJSON(b []byte, v any) error {
	strict, err := kjson.UnmarshalStrict(b, v)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
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
