package profile

// DefaultDomain prefixes every label and annotation key the webhook reads or writes.
const DefaultDomain = "ai.example.com"

// Keys are the label and annotation keys under one domain. KeysFor is the one place they are
// derived: the profile loader (keys a profile may not set), the injector, the server, the
// offline CLI, the Pulumi stack's namespace selector and the tests all use it.
type Keys struct {
	Profile string // label or annotation naming the profile to apply
	// Inject opts out: a Pod annotation or label, and the namespace label the webhook's
	// namespaceSelector matches. Its values are OptOutValues and OptInValues.
	Inject   string
	Injected string // annotation stamped with "<profile>@<hash>"
}

// KeysFor derives the keys for a domain.
func KeysFor(domain string) Keys {
	return Keys{Profile: domain + "/profile", Inject: domain + "/inject", Injected: domain + "/injected"}
}

// all lists the keys: a profile may set none of them.
func (k Keys) all() []string { return []string{k.Profile, k.Inject, k.Injected} }

// Values of the Keys.Inject key, lower case. On a Pod they are compared trimmed and
// case-insensitively and any other value is refused (guessing could inject into a Pod whose
// owner meant to opt out); the namespace selector, which is case-sensitive, lists their lower,
// Capitalised and UPPER spellings.
var (
	OptOutValues = []string{"false", "no", "off", "0", "disabled"}
	OptInValues  = []string{"true", "yes", "on", "1", "enabled"}
)
