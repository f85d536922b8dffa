package main

import (
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
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/ai-webhook/ai-webhook/webhook/inject"
	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// injectCmd runs the admission decision on a Pod file with no cluster.
func injectCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("inject", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "Pod or workload manifest (Deployment, Job, ...), YAML or JSON ('-' for stdin)")
	profilesFile := fs.String("profiles-file", "", "profile file (default: the shipped examples)")
	domain := fs.String("domain", inject.DefaultDomain, "prefix of the label and annotation keys")
	asPatch := fs.Bool("patch", false, "print the JSON patch the webhook would return")
	explain := fs.Bool("explain", false, "print what happened to each setting of the profile, and why")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *file == "" {
		return usageError{errors.New("inject: -f pod.yaml is required")}
	}
	if *asPatch && *explain {
		return usageError{errors.New("inject: choose one of --patch and --explain")}
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
	original, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return fmt.Errorf("inject: %s is not YAML or JSON: %w", *file, err)
	}
	pod, prefix, err := podOf(original)
	if err != nil {
		return fmt.Errorf("inject: %s: %w", *file, err)
	}
	res, err := inject.Mutate(pod, set, inject.KeysFor(*domain))
	if err != nil {
		return fmt.Errorf("the webhook would deny this Pod: %w", err)
	}
	for i := range res.Patch {
		res.Patch[i].Path = prefix + res.Patch[i].Path
	}
	switch {
	case *asPatch:
		b, err := json.MarshalIndent(res.Patch, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	case *explain:
		return printExplain(stdout, res)
	}
	for _, w := range res.Warnings() {
		fmt.Fprintln(stderr, "Warning:", w)
	}
	// Print the result of applying the patch to the input, exactly as the API server would.
	patched, err := applyPatch(original, res)
	if err != nil {
		return err
	}
	out, err := yaml.JSONToYAML(patched)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// templatePaths locate the Pod template of the workload kinds, as JSON pointers.
var templatePaths = map[string]string{
	"Deployment": "/spec/template", "StatefulSet": "/spec/template", "DaemonSet": "/spec/template",
	"ReplicaSet": "/spec/template", "Job": "/spec/template", "PodTemplate": "/template",
	"CronJob": "/spec/jobTemplate/spec/template",
}

// podOf returns the Pod a manifest describes: the Pod itself, or a workload's Pod template
// (as its Pods will be admitted), with the JSON pointer of that template in the manifest.
func podOf(manifest []byte) (*corev1.Pod, string, error) {
	var meta struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(manifest, &meta); err != nil {
		return nil, "", fmt.Errorf("not a Kubernetes object: %w", err)
	}
	if meta.Kind == "Pod" {
		var pod corev1.Pod
		if err := strictJSON(manifest, &pod); err != nil {
			return nil, "", fmt.Errorf("not a valid Pod: %w", err)
		}
		return &pod, "", nil
	}
	prefix, ok := templatePaths[meta.Kind]
	if !ok {
		return nil, "", fmt.Errorf("kind %q: give a Pod or a workload with a Pod template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob)", meta.Kind)
	}
	var doc any = map[string]any{}
	if err := json.Unmarshal(manifest, &doc); err != nil {
		return nil, "", err
	}
	for _, key := range strings.Split(prefix[1:], "/") {
		m, _ := doc.(map[string]any)
		if doc = m[key]; doc == nil {
			return nil, "", fmt.Errorf("%s has no %s", meta.Kind, prefix)
		}
	}
	b, _ := json.Marshal(doc)
	var tmpl corev1.PodTemplateSpec
	if err := strictJSON(b, &tmpl); err != nil {
		return nil, "", fmt.Errorf("%s %s is not a valid Pod template: %w", meta.Kind, prefix, err)
	}
	return &corev1.Pod{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}, prefix, nil
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
