package webhookstack

// The ResourceClaimTemplates of DRA profiles (README, "DRA mode"): a profile names a template
// (container.resourceClaims), which must exist in the Pod's namespace; the stack can create it
// in the namespaces the operator lists. The profile says only the template's name: which devices
// it asks for is the cluster's business (the DeviceClass a DRA driver publishes), so it comes
// from this key.

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	pmetav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	presourcev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/resource/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	resourcev1 "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/ai-webhook/ai-webhook/webhook/profile"
)

// ClaimTemplates (resourceClaimTemplates) has the stack create, in each of Namespaces, every
// ResourceClaimTemplate the profiles name, each requesting Count devices of DeviceClassName, or
// what its entry in Templates says. No namespaces (the default): no templates.
type ClaimTemplates struct {
	Namespaces      []string
	DeviceClassName string
	Count           int
	// Templates override DeviceClassName and Count for one template name ("" and 0 keep them).
	Templates map[string]ClaimTemplate
}

// ClaimTemplate is what one template requests.
type ClaimTemplate struct {
	DeviceClassName string
	Count           int
}

// claimRequestName names the one device request of each template (the containers' claims
// name the Pod's claim, not the request, so any DNS label does).
const claimRequestName = "device"

type claimTemplateValue struct {
	DeviceClassName *Text `json:"deviceClassName"`
	Count           *int  `json:"count"`
}

// claimTemplatesValue is the resourceClaimTemplates key as written in config.
type claimTemplatesValue struct {
	Namespaces      []Text                        `json:"namespaces"`
	DeviceClassName *Text                         `json:"deviceClassName"`
	Count           *int                          `json:"count"`
	Templates       map[string]claimTemplateValue `json:"templates"`
}

func (v claimTemplatesValue) over(d ClaimTemplates) ClaimTemplates {
	if v.Namespaces != nil {
		d.Namespaces = texts[string](v.Namespaces)
	}
	if v.DeviceClassName != nil {
		d.DeviceClassName = string(*v.DeviceClassName)
	}
	if v.Count != nil {
		d.Count = *v.Count
	}
	if v.Templates != nil {
		out := make(map[string]ClaimTemplate, len(d.Templates)+len(v.Templates))
		maps.Copy(out, d.Templates)
		for name, t := range v.Templates {
			e := out[name]
			if t.DeviceClassName != nil {
				e.DeviceClassName = string(*t.DeviceClassName)
			}
			if t.Count != nil {
				e.Count = *t.Count
			}
			out[name] = e
		}
		d.Templates = out
	}
	return d
}

// claimTemplateNames are the templates the profiles name, sorted; nil when the file does not
// parse (Validate reports that under profiles).
func (c *Config) claimTemplateNames() []string {
	set, err := profile.Parse(c.profilesYAML(), c.Domain)
	if err != nil {
		return nil
	}
	names := map[string]bool{}
	for _, n := range set.Names() {
		p, _ := set.Get(n)
		for _, rc := range p.Container.ResourceClaims {
			names[ptr.Deref(rc.ResourceClaimTemplateName, "")] = true
		}
	}
	return slices.Sorted(maps.Keys(names))
}

// request is what template name asks for: its own entry over the key's defaults.
func (t ClaimTemplates) request(name string) ClaimTemplate {
	r := ClaimTemplate{DeviceClassName: t.DeviceClassName, Count: t.Count}
	if e, ok := t.Templates[name]; ok {
		if e.DeviceClassName != "" {
			r.DeviceClassName = e.DeviceClassName
		}
		if e.Count != 0 {
			r.Count = e.Count
		}
	}
	return r
}

func (c *Config) validateClaimTemplates() []error {
	t := c.ResourceClaimTemplates
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, keyError("resourceClaimTemplates"+key, format, args...))
	}
	seen := map[string]bool{}
	for i, ns := range t.Namespaces {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			bad(fmt.Sprintf(".namespaces[%d]", i), "must be a namespace name, got %q: %s", ns, strings.Join(msgs, "; "))
		} else if seen[ns] {
			bad(fmt.Sprintf(".namespaces[%d]", i), "lists %q twice", ns)
		}
		seen[ns] = true
	}
	checkClass := func(key, class string) {
		if msgs := validation.IsDNS1123Subdomain(class); len(msgs) > 0 {
			bad(key, "must be a DeviceClass name such as gpu.nvidia.com, got %q: %s", class, strings.Join(msgs, "; "))
		}
	}
	checkCount := func(key string, n int) {
		if n < 1 || n > resourcev1.AllocationResultsMaxSize {
			bad(key, "must be between 1 and %d devices, got %d", resourcev1.AllocationResultsMaxSize, n)
		}
	}
	checkClass(".deviceClassName", t.DeviceClassName)
	checkCount(".count", t.Count)
	named := c.claimTemplateNames()
	for _, name := range slices.Sorted(maps.Keys(t.Templates)) {
		e := t.Templates[name]
		if !slices.Contains(named, name) {
			bad(".templates."+name, "names a template no profile uses (the profiles name: %s)", strings.Join(named, ", "))
			continue
		}
		if e.DeviceClassName != "" {
			checkClass(".templates."+name+".deviceClassName", e.DeviceClassName)
		}
		if e.Count != 0 {
			checkCount(".templates."+name+".count", e.Count)
		}
	}
	if len(t.Namespaces) > 0 && len(named) == 0 {
		if _, err := profile.Parse(c.profilesYAML(), c.Domain); err == nil { // else reported under profiles
			bad(".namespaces", "is set but no profile names a ResourceClaimTemplate (container.resourceClaims): nothing would be created")
		}
	}
	return errs
}

// newClaimTemplates creates, in each configured namespace, each ResourceClaimTemplate the
// profiles name, with its metadata.name exactly as the profiles write it. The namespaces must
// exist. A template's spec cannot be changed in place (the API server refuses updates), so a
// change replaces it; Pods keep the claims already made from the old one.
func newClaimTemplates(ctx *pulumi.Context, name string, cfg Config, opts ...pulumi.ResourceOption) error {
	t := cfg.ResourceClaimTemplates
	if len(t.Namespaces) == 0 {
		return nil
	}
	opts = append(opts, pulumi.ReplaceOnChanges([]string{"spec"}), pulumi.DeleteBeforeReplace(true))
	for _, ns := range t.Namespaces {
		for _, tmpl := range cfg.claimTemplateNames() {
			r := t.request(tmpl)
			_, err := presourcev1.NewResourceClaimTemplate(ctx, name+"-claim-"+ns+"-"+tmpl, &presourcev1.ResourceClaimTemplateArgs{
				Metadata: &pmetav1.ObjectMetaArgs{Name: pulumi.String(tmpl), Namespace: pulumi.String(ns), Labels: commonLabels(cfg.Name)},
				Spec: &presourcev1.ResourceClaimTemplateSpecArgs{
					Spec: &presourcev1.ResourceClaimSpecArgs{
						Devices: &presourcev1.DeviceClaimArgs{
							Requests: presourcev1.DeviceRequestArray{&presourcev1.DeviceRequestArgs{
								Name: pulumi.String(claimRequestName),
								Exactly: &presourcev1.ExactDeviceRequestArgs{
									DeviceClassName: pulumi.String(r.DeviceClassName),
									AllocationMode:  pulumi.String(string(resourcev1.DeviceAllocationModeExactCount)),
									Count:           pulumi.Int(r.Count),
								},
							}},
						},
					},
				},
			}, opts...)
			if err != nil {
				return err
			}
		}
	}
	return nil
}
