// Package tlsprovider is a test-only stand-in for the pulumi-tls provider plugin
// (pulumi-resource-tls v5). The real plugin cannot be installed on machines
// without internet access, so the local cluster and the end-to-end tests put
// this one on PATH instead. It implements exactly the four resources the
// ai-webhook stack uses, with the pulumi-tls v5 property names and the
// semantics the stack relies on:
//
//   - tls:index/privateKey:PrivateKey (RSA, ECDSA, ED25519; private keys secret)
//   - tls:index/selfSignedCert:SelfSignedCert
//   - tls:index/certRequest:CertRequest
//   - tls:index/locallySignedCert:LocallySignedCert
//
// Every input change replaces the resource, except earlyRenewalHours, which is
// updated in place as upstream does. Certificates report readyForRenewal once
// the current time is within earlyRenewalHours of validityEndTime; Diff then
// asks for a replacement, so a routine `pulumi up` renews them, and Read
// (`pulumi refresh`) stores the flag. allowedUses take upstream's snake_case
// values and anything else fails Check, as it does upstream.
//
// A normal `pulumi up` uses the real plugin; nothing here is shipped.
package tlsprovider

// Plugin identity: the engine matches the package name, and the version is the
// one the pulumi-tls v5.2.0 Go SDK asks for.
const (
	Name    = "tls"
	Version = "5.2.0"
)

// Resource type tokens, as the pulumi-tls SDK registers them.
const (
	TypePrivateKey        = "tls:index/privateKey:PrivateKey"
	TypeSelfSignedCert    = "tls:index/selfSignedCert:SelfSignedCert"
	TypeCertRequest       = "tls:index/certRequest:CertRequest"
	TypeLocallySignedCert = "tls:index/locallySignedCert:LocallySignedCert"
)

// kind is the schema type of a property.
type kind string

const (
	kindString  kind = "string"
	kindInteger kind = "integer"
	kindBoolean kind = "boolean"
	kindStrings kind = "array"   // a list of strings
	kindSubject kind = "subject" // the certificate subject object
)

// prop describes one property of a resource: every property appears in the
// resource's state; inputs also appear in its arguments.
type prop struct {
	name     string
	kind     kind
	input    bool
	required bool
	// secret properties are returned as secrets (private keys).
	secret bool
	// def is applied by Check when an optional input is absent.
	def any
	// inPlace inputs are updated without replacing the resource.
	inPlace bool
	// oneOf restricts a string (or each element of a list) to these values.
	oneOf []string
}

// resourceSpec is everything the provider knows about one resource type.
type resourceSpec struct {
	token string
	props []prop
	// renewable certificates carry validityEndTime, earlyRenewalHours and
	// readyForRenewal.
	renewable bool
	create    createFunc
}

func (s *resourceSpec) prop(name string) (prop, bool) {
	for _, p := range s.props {
		if p.name == name {
			return p, true
		}
	}
	return prop{}, false
}

// Inputs returns the names of the resource's input properties.
func (s *resourceSpec) inputs() []string {
	var names []string
	for _, p := range s.props {
		if p.input {
			names = append(names, p.name)
		}
	}
	return names
}

var (
	algorithms  = []string{"RSA", "ECDSA", "ED25519"}
	ecdsaCurves = []string{"P224", "P256", "P384", "P521"}
)

// Properties shared by the certificate resources.
var (
	subjectProps = []prop{
		{name: "subject", kind: kindSubject, input: true},
		{name: "dnsNames", kind: kindStrings, input: true},
		{name: "ipAddresses", kind: kindStrings, input: true},
		{name: "uris", kind: kindStrings, input: true},
	}
	validityProps = []prop{
		{name: "validityPeriodHours", kind: kindInteger, input: true, required: true},
		{name: "allowedUses", kind: kindStrings, input: true, required: true, oneOf: allowedUseNames()},
		{name: "earlyRenewalHours", kind: kindInteger, input: true, def: 0.0, inPlace: true},
		{name: "isCaCertificate", kind: kindBoolean, input: true, def: false},
		{name: "setSubjectKeyId", kind: kindBoolean, input: true, def: false},
		{name: "certPem", kind: kindString},
		{name: "validityStartTime", kind: kindString},
		{name: "validityEndTime", kind: kindString},
		{name: "readyForRenewal", kind: kindBoolean},
	}
)

func concat(lists ...[]prop) []prop {
	var all []prop
	for _, l := range lists {
		all = append(all, l...)
	}
	return all
}

var specs = map[string]*resourceSpec{
	TypePrivateKey: {
		token: TypePrivateKey,
		props: []prop{
			{name: "algorithm", kind: kindString, input: true, required: true, oneOf: algorithms},
			{name: "ecdsaCurve", kind: kindString, input: true, def: "P224", oneOf: ecdsaCurves},
			{name: "rsaBits", kind: kindInteger, input: true, def: 2048.0},
			{name: "privateKeyPem", kind: kindString, secret: true},
			{name: "privateKeyPemPkcs8", kind: kindString, secret: true},
			{name: "privateKeyOpenssh", kind: kindString, secret: true},
			{name: "publicKeyPem", kind: kindString},
			{name: "publicKeyOpenssh", kind: kindString},
			{name: "publicKeyFingerprintMd5", kind: kindString},
			{name: "publicKeyFingerprintSha256", kind: kindString},
		},
		create: createPrivateKey,
	},
	TypeSelfSignedCert: {
		token: TypeSelfSignedCert,
		props: concat(
			[]prop{
				{name: "privateKeyPem", kind: kindString, input: true, required: true, secret: true},
				{name: "setAuthorityKeyId", kind: kindBoolean, input: true, def: false},
				{name: "keyAlgorithm", kind: kindString},
			},
			subjectProps, validityProps),
		renewable: true,
		create:    createSelfSignedCert,
	},
	TypeCertRequest: {
		token: TypeCertRequest,
		props: concat(
			[]prop{
				{name: "privateKeyPem", kind: kindString, input: true, required: true, secret: true},
				{name: "certRequestPem", kind: kindString},
				{name: "keyAlgorithm", kind: kindString},
			},
			subjectProps),
		create: createCertRequest,
	},
	TypeLocallySignedCert: {
		token: TypeLocallySignedCert,
		props: concat(
			[]prop{
				{name: "certRequestPem", kind: kindString, input: true, required: true},
				{name: "caCertPem", kind: kindString, input: true, required: true},
				{name: "caPrivateKeyPem", kind: kindString, input: true, required: true, secret: true},
				{name: "caKeyAlgorithm", kind: kindString},
			},
			validityProps),
		renewable: true,
		create:    createLocallySignedCert,
	},
}

// subjectFields are the properties of the subject object
// (SelfSignedCertSubject / CertRequestSubject upstream).
var subjectFields = []string{
	"commonName", "country", "emailAddress", "locality", "organization",
	"organizationalUnit", "postalCode", "province", "serialNumber", "streetAddresses",
}
