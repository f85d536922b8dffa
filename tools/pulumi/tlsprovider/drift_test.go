package tlsprovider

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	tls "github.com/pulumi/pulumi-tls/sdk/v5/go/tls"
)

// pulumiTags lists the `pulumi:"..."` tags of a struct type's fields.
func pulumiTags(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var tags []string
	for i := range t.NumField() {
		if tag, ok := t.Field(i).Tag.Lookup("pulumi"); ok {
			tags = append(tags, strings.Split(tag, ",")[0])
		}
	}
	slices.Sort(tags)
	return tags
}

// The stand-in must speak exactly the property names of the real provider,
// as the pulumi-tls v5.2.0 Go SDK that our stack compiles against declares
// them: the resource structs list every state property, the Args element
// types every input.
func TestPropertyNamesMatchPulumiTLSSDK(t *testing.T) {
	cases := []struct {
		token string
		state reflect.Type
		args  reflect.Type
	}{
		{TypePrivateKey, reflect.TypeOf(tls.PrivateKey{}), tls.PrivateKeyArgs{}.ElementType()},
		{TypeSelfSignedCert, reflect.TypeOf(tls.SelfSignedCert{}), tls.SelfSignedCertArgs{}.ElementType()},
		{TypeCertRequest, reflect.TypeOf(tls.CertRequest{}), tls.CertRequestArgs{}.ElementType()},
		{TypeLocallySignedCert, reflect.TypeOf(tls.LocallySignedCert{}), tls.LocallySignedCertArgs{}.ElementType()},
	}
	if len(cases) != len(specs) {
		t.Fatalf("stand-in implements %d resources, test covers %d", len(specs), len(cases))
	}
	for _, c := range cases {
		spec := specs[c.token]
		if spec == nil {
			t.Fatalf("stand-in lacks %s", c.token)
		}
		var state, ins, required []string
		for _, p := range spec.props {
			state = append(state, p.name)
			if p.input {
				ins = append(ins, p.name)
			}
			// Go types cannot tell a required list from an optional one.
			if p.required && p.kind != kindStrings {
				required = append(required, p.name)
			}
		}
		slices.Sort(state)
		slices.Sort(ins)
		if want := pulumiTags(c.state); !slices.Equal(state, want) {
			t.Errorf("%s state properties:\n got  %v\n want %v", c.token, state, want)
		}
		if want := pulumiTags(c.args); !slices.Equal(ins, want) {
			t.Errorf("%s input properties:\n got  %v\n want %v", c.token, ins, want)
		}
		// Required inputs are the non-pointer, non-slice fields of the args type.
		var wantRequired []string
		at := c.args
		for i := range at.NumField() {
			f := at.Field(i)
			if k := f.Type.Kind(); k != reflect.Pointer && k != reflect.Slice {
				wantRequired = append(wantRequired, strings.Split(f.Tag.Get("pulumi"), ",")[0])
			}
		}
		slices.Sort(wantRequired)
		slices.Sort(required)
		if !slices.Equal(required, wantRequired) {
			t.Errorf("%s required inputs:\n got  %v\n want %v", c.token, required, wantRequired)
		}
	}
}

func TestSubjectFieldsMatchPulumiTLSSDK(t *testing.T) {
	fields := slices.Sorted(slices.Values(subjectFields))
	for _, typ := range []reflect.Type{reflect.TypeOf(tls.SelfSignedCertSubject{}), reflect.TypeOf(tls.CertRequestSubject{})} {
		if want := pulumiTags(typ); !slices.Equal(fields, want) {
			t.Errorf("%s fields:\n got  %v\n want %v", typ.Name(), fields, want)
		}
	}
}

// The SDK marks these outputs secret (AdditionalSecretOutputs); the stand-in
// must return them as secrets too so state never holds them in plaintext.
func TestPrivateKeyOutputsAreSecret(t *testing.T) {
	for _, name := range []string{"privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"} {
		p, ok := specs[TypePrivateKey].prop(name)
		if !ok || !p.secret {
			t.Errorf("PrivateKey.%s must be secret", name)
		}
	}
	for token, name := range map[string]string{
		TypeSelfSignedCert: "privateKeyPem", TypeCertRequest: "privateKeyPem", TypeLocallySignedCert: "caPrivateKeyPem",
	} {
		if p, _ := specs[token].prop(name); !p.secret {
			t.Errorf("%s.%s must be secret", token, name)
		}
	}
}
