package tlsprovider

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumiprovider "github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// Serve runs the plugin: it is what `main` of pulumi-resource-tls calls.
func Serve() error {
	return pulumiprovider.Main(Name, func(*pulumiprovider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return plugin.NewProviderServer(New(time.Now)), nil
	})
}

// Provider implements plugin.Provider for the four tls resources.
type Provider struct {
	plugin.UnimplementedProvider
	now func() time.Time
}

// New returns the provider; now is its clock (tests pass a fixed one).
func New(now func() time.Time) *Provider {
	return &Provider{now: func() time.Time { return now().UTC().Truncate(time.Second) }}
}

func (p *Provider) Close() error { return nil }

func (p *Provider) Pkg() string { return Name }

func (p *Provider) GetPluginInfo(context.Context) (plugin.PluginInfo, error) {
	v := semver.MustParse(Version)
	return plugin.PluginInfo{Version: &v}, nil
}

func (p *Provider) Handshake(context.Context, plugin.ProviderHandshakeRequest) (*plugin.ProviderHandshakeResponse, error) {
	return &plugin.ProviderHandshakeResponse{AcceptSecrets: true, AcceptResources: true}, nil
}

func (p *Provider) SignalCancellation(context.Context) error { return nil }

func (p *Provider) GetSchema(context.Context, plugin.GetSchemaRequest) (plugin.GetSchemaResponse, error) {
	return plugin.GetSchemaResponse{Schema: schemaJSON()}, nil
}

// The provider has no configuration.

func (p *Provider) CheckConfig(_ context.Context, req plugin.CheckConfigRequest) (plugin.CheckConfigResponse, error) {
	return plugin.CheckConfigResponse{Properties: req.News}, nil
}

func (p *Provider) DiffConfig(context.Context, plugin.DiffConfigRequest) (plugin.DiffConfigResponse, error) {
	return plugin.DiffResult{Changes: plugin.DiffNone}, nil
}

func (p *Provider) Configure(context.Context, plugin.ConfigureRequest) (plugin.ConfigureResponse, error) {
	return plugin.ConfigureResponse{}, nil
}

func lookup(typ string) (*resourceSpec, error) {
	if s, ok := specs[typ]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("the pulumi-resource-tls test stand-in does not implement %q (only %s)",
		typ, strings.Join(resourceTypes(), ", "))
}

func resourceTypes() []string {
	var ts []string
	for t := range specs {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

// Check applies defaults and validates inputs the way upstream's schema does.
func (p *Provider) Check(_ context.Context, req plugin.CheckRequest) (plugin.CheckResponse, error) {
	spec, err := lookup(string(req.Type))
	if err != nil {
		return plugin.CheckResponse{}, err
	}
	news := req.News.Copy()
	var failures []plugin.CheckFailure
	fail := func(k, format string, args ...any) {
		failures = append(failures, plugin.CheckFailure{Property: resource.PropertyKey(k), Reason: fmt.Sprintf(format, args...)})
	}
	for k := range news {
		if pr, ok := spec.prop(string(k)); !ok || !pr.input {
			fail(string(k), "%s has no input property %q", spec.token, k)
		}
	}
	for _, pr := range spec.props {
		if !pr.input {
			continue
		}
		key := resource.PropertyKey(pr.name)
		v, ok := news[key]
		if !ok || v.IsNull() {
			switch {
			case pr.required:
				fail(pr.name, "missing required property %q", pr.name)
			case pr.def != nil:
				news[key] = resource.NewPropertyValue(pr.def)
			}
			continue
		}
		if v.ContainsUnknowns() {
			continue
		}
		if err := pr.validate(plain(v)); err != nil {
			fail(pr.name, "%s: %v", pr.name, err)
		}
	}
	return plugin.CheckResponse{Properties: news, Failures: failures}, nil
}

func (pr prop) validate(v resource.PropertyValue) error {
	switch pr.kind {
	case kindString:
		if !v.IsString() {
			return fmt.Errorf("expected a string, got %v", v.TypeString())
		}
		return pr.oneOfCheck(v.StringValue())
	case kindInteger:
		if !v.IsNumber() || v.NumberValue() != float64(int64(v.NumberValue())) || v.NumberValue() < 0 {
			return fmt.Errorf("expected a non-negative integer, got %v", v)
		}
	case kindBoolean:
		if !v.IsBool() {
			return fmt.Errorf("expected a boolean, got %v", v.TypeString())
		}
	case kindStrings:
		if !v.IsArray() {
			return fmt.Errorf("expected a list of strings, got %v", v.TypeString())
		}
		for _, e := range v.ArrayValue() {
			if !e.IsString() {
				return fmt.Errorf("expected a list of strings, found %v", e.TypeString())
			}
			if err := pr.oneOfCheck(e.StringValue()); err != nil {
				return err
			}
		}
	case kindSubject:
		if !v.IsObject() {
			return fmt.Errorf("expected an object, got %v", v.TypeString())
		}
		for k := range v.ObjectValue() {
			if !slices.Contains(subjectFields, string(k)) {
				return fmt.Errorf("unknown subject field %q (known: %s)", k, strings.Join(subjectFields, ", "))
			}
		}
	}
	return nil
}

func (pr prop) oneOfCheck(s string) error {
	if pr.oneOf == nil || slices.Contains(pr.oneOf, s) {
		return nil
	}
	return fmt.Errorf("%q is not one of: %s", s, strings.Join(pr.oneOf, ", "))
}

// Diff replaces the resource when any input but earlyRenewalHours changed, and
// when a certificate is ready for renewal (upstream's ModifyPlan).
func (p *Provider) Diff(_ context.Context, req plugin.DiffRequest) (plugin.DiffResponse, error) {
	spec, err := lookup(string(req.Type))
	if err != nil {
		return plugin.DiffResult{}, err
	}
	olds := req.OldInputs
	if len(olds) == 0 {
		olds = req.OldOutputs
	}
	detailed := map[string]plugin.PropertyDiff{}
	var changed, replaces []resource.PropertyKey
	for _, pr := range spec.props {
		if !pr.input {
			continue
		}
		key := resource.PropertyKey(pr.name)
		if equal(olds[key], req.NewInputs[key]) {
			continue
		}
		kind := plugin.DiffUpdateReplace
		if pr.inPlace {
			kind = plugin.DiffUpdate
		} else {
			replaces = append(replaces, key)
		}
		detailed[pr.name] = plugin.PropertyDiff{Kind: kind, InputDiff: true}
		changed = append(changed, key)
	}
	if spec.renewable {
		hours := req.NewInputs["earlyRenewalHours"]
		end := req.OldOutputs["validityEndTime"]
		if !hours.ContainsUnknowns() && end.IsString() &&
			readyForRenewal(p.now(), end.StringValue(), intOf(hours)) {
			replaces = append(replaces, "readyForRenewal")
			changed = append(changed, "readyForRenewal")
			detailed["readyForRenewal"] = plugin.PropertyDiff{Kind: plugin.DiffUpdateReplace}
		}
	}
	if len(changed) == 0 {
		return plugin.DiffResult{Changes: plugin.DiffNone}, nil
	}
	return plugin.DiffResult{
		Changes:      plugin.DiffSome,
		ChangedKeys:  changed,
		ReplaceKeys:  replaces,
		DetailedDiff: detailed,
	}, nil
}

func (p *Provider) Create(_ context.Context, req plugin.CreateRequest) (plugin.CreateResponse, error) {
	spec, err := lookup(string(req.Type))
	if err != nil {
		return plugin.CreateResponse{}, err
	}
	state := req.Properties.Copy()
	if req.Preview {
		for _, pr := range spec.props {
			if !pr.input {
				state[resource.PropertyKey(pr.name)] = resource.MakeComputed(resource.NewStringProperty(""))
			}
		}
		return plugin.CreateResponse{Properties: state}, nil
	}
	id, outs, err := spec.create(p.now(), inputs{req.Properties})
	if err != nil {
		return plugin.CreateResponse{}, fmt.Errorf("%s %s: %w", spec.token, req.URN.Name(), err)
	}
	for k, v := range outs {
		state[k] = v
	}
	markSecrets(spec, state)
	return plugin.CreateResponse{ID: resource.ID(id), Properties: state, Status: resource.StatusOK}, nil
}

// Read is `pulumi refresh`: nothing outside the state can change, except that
// time may have brought a certificate into its renewal window.
func (p *Provider) Read(_ context.Context, req plugin.ReadRequest) (plugin.ReadResponse, error) {
	spec, err := lookup(string(req.Type))
	if err != nil {
		return plugin.ReadResponse{}, err
	}
	if len(req.State) == 0 {
		return plugin.ReadResponse{}, fmt.Errorf("%s: import is not supported by the test stand-in", spec.token)
	}
	state := req.State.Copy()
	p.refreshRenewal(spec, state)
	markSecrets(spec, state)
	ins := req.Inputs
	if ins == nil {
		ins = resource.PropertyMap{}
		for _, name := range spec.inputs() {
			if v, ok := state[resource.PropertyKey(name)]; ok {
				ins[resource.PropertyKey(name)] = v
			}
		}
	}
	return plugin.ReadResponse{
		ReadResult: plugin.ReadResult{ID: req.ID, Inputs: ins, Outputs: state},
		Status:     resource.StatusOK,
	}, nil
}

// Update only ever changes earlyRenewalHours (every other change replaces).
func (p *Provider) Update(_ context.Context, req plugin.UpdateRequest) (plugin.UpdateResponse, error) {
	spec, err := lookup(string(req.Type))
	if err != nil {
		return plugin.UpdateResponse{}, err
	}
	state := req.OldOutputs.Copy()
	for _, name := range spec.inputs() {
		key := resource.PropertyKey(name)
		if v, ok := req.NewInputs[key]; ok {
			state[key] = v
		} else {
			delete(state, key)
		}
	}
	if !req.Preview {
		p.refreshRenewal(spec, state)
	}
	markSecrets(spec, state)
	return plugin.UpdateResponse{Properties: state, Status: resource.StatusOK}, nil
}

func (p *Provider) Delete(context.Context, plugin.DeleteRequest) (plugin.DeleteResponse, error) {
	// Keys and certificates exist only in the state.
	return plugin.DeleteResponse{Status: resource.StatusOK}, nil
}

func (p *Provider) refreshRenewal(spec *resourceSpec, state resource.PropertyMap) {
	if !spec.renewable {
		return
	}
	if end := state["validityEndTime"]; end.IsString() {
		state["readyForRenewal"] = resource.NewBoolProperty(
			readyForRenewal(p.now(), end.StringValue(), intOf(state["earlyRenewalHours"])))
	}
}

// markSecrets makes every secret property of the state a secret value.
func markSecrets(spec *resourceSpec, state resource.PropertyMap) {
	for _, pr := range spec.props {
		key := resource.PropertyKey(pr.name)
		if v, ok := state[key]; ok && pr.secret && !v.IsSecret() && !v.IsComputed() {
			state[key] = resource.MakeSecret(v)
		}
	}
}

// plain strips secret wrappers, recursively.
func plain(v resource.PropertyValue) resource.PropertyValue {
	switch {
	case v.IsSecret():
		return plain(v.SecretValue().Element)
	case v.IsArray():
		arr := make([]resource.PropertyValue, len(v.ArrayValue()))
		for i, e := range v.ArrayValue() {
			arr[i] = plain(e)
		}
		return resource.NewArrayProperty(arr)
	case v.IsObject():
		obj := resource.PropertyMap{}
		for k, e := range v.ObjectValue() {
			obj[k] = plain(e)
		}
		return resource.NewObjectProperty(obj)
	}
	return v
}

// equal compares two input values, ignoring secretness and treating a missing
// value like null; an unknown value is never equal to anything.
func equal(a, b resource.PropertyValue) bool {
	if a.ContainsUnknowns() || b.ContainsUnknowns() {
		return false
	}
	a, b = plain(a), plain(b)
	if a.IsNull() || b.IsNull() {
		return a.IsNull() && b.IsNull()
	}
	return a.DeepEquals(b)
}

func intOf(v resource.PropertyValue) int {
	if v = plain(v); v.IsNumber() {
		return int(v.NumberValue())
	}
	return 0
}

// inputs reads checked, known input values (secrets unwrapped).
type inputs struct{ m resource.PropertyMap }

func (in inputs) get(k string) resource.PropertyValue { return plain(in.m[resource.PropertyKey(k)]) }

func (in inputs) str(k string) string {
	if v := in.get(k); v.IsString() {
		return v.StringValue()
	}
	return ""
}

func (in inputs) integer(k string) int { return intOf(in.get(k)) }

func (in inputs) boolean(k string) bool {
	v := in.get(k)
	return v.IsBool() && v.BoolValue()
}

func (in inputs) strs(k string) []string {
	var out []string
	if v := in.get(k); v.IsArray() {
		for _, e := range v.ArrayValue() {
			if e.IsString() {
				out = append(out, e.StringValue())
			}
		}
	}
	return out
}

func (in inputs) object(k string) inputs {
	if v := in.get(k); v.IsObject() {
		return inputs{v.ObjectValue()}
	}
	return inputs{resource.PropertyMap{}}
}

// schemaJSON is a minimal package schema: name, version and the four resources
// with their properties (enough for `pulumi package get-schema` and tooling).
func schemaJSON() []byte {
	type propSpec struct {
		Type   string    `json:"type,omitempty"`
		Ref    string    `json:"$ref,omitempty"`
		Items  *propSpec `json:"items,omitempty"`
		Secret bool      `json:"secret,omitempty"`
	}
	type resSpec struct {
		Properties      map[string]propSpec `json:"properties"`
		InputProperties map[string]propSpec `json:"inputProperties"`
		RequiredInputs  []string            `json:"requiredInputs,omitempty"`
	}
	subjectType := map[string]propSpec{}
	for _, f := range subjectFields {
		subjectType[f] = propSpec{Type: "string"}
	}
	subjectType["streetAddresses"] = propSpec{Type: "array", Items: &propSpec{Type: "string"}}

	resources := map[string]resSpec{}
	types := map[string]any{}
	for token, spec := range specs {
		rs := resSpec{Properties: map[string]propSpec{}, InputProperties: map[string]propSpec{}}
		for _, pr := range spec.props {
			ps := propSpec{Type: string(pr.kind), Secret: pr.secret}
			switch pr.kind {
			case kindStrings:
				ps.Items = &propSpec{Type: "string"}
			case kindSubject:
				// tls:index/selfSignedCert:SelfSignedCert -> tls:index/SelfSignedCertSubject:SelfSignedCertSubject
				res := token[strings.LastIndex(token, ":")+1:]
				ref := "tls:index/" + res + "Subject:" + res + "Subject"
				ps = propSpec{Ref: "#/types/" + ref}
				types[ref] = map[string]any{"type": "object", "properties": subjectType}
			}
			rs.Properties[pr.name] = ps
			if pr.input {
				rs.InputProperties[pr.name] = ps
				if pr.required {
					rs.RequiredInputs = append(rs.RequiredInputs, pr.name)
				}
			}
		}
		resources[token] = rs
	}
	b, err := json.Marshal(map[string]any{
		"name":        Name,
		"version":     Version,
		"description": "Test-only stand-in for the pulumi-tls provider (four resources).",
		"resources":   resources,
		"types":       types,
	})
	if err != nil {
		panic(err)
	}
	return b
}
