package profile

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// A resource.Quantity that does not parse fails the typed decode at the first one, with no
// path. checkQuantities runs before it: it walks the decoded document along the Go types of
// File, reports every quantity that does not parse with its path, and puts "0" in its place
// so the typed decode and the validation that follow report everything else too.

var (
	quantityType = reflect.TypeFor[resource.Quantity]()
	profileType  = reflect.TypeFor[Profile]()
)

func checkQuantities(doc any, t reflect.Type, p *field.Path, errs *field.ErrorList) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == quantityType {
		return checkQuantity(doc, p, errs)
	}
	switch t.Kind() {
	case reflect.Struct:
		if m, ok := doc.(map[string]any); ok {
			checkStruct(m, t, p, errs)
		}
	case reflect.Slice:
		if l, ok := doc.([]any); ok {
			for i := range l {
				ip := p.Index(i)
				if name, _ := nameOf(l[i]); t.Elem() == profileType && name != "" {
					ip = p.Key(name) // profiles are named by name, as in every other message
				}
				l[i] = checkQuantities(l[i], t.Elem(), ip, errs)
			}
		}
	case reflect.Map:
		if m, ok := doc.(map[string]any); ok {
			for _, k := range slices.Sorted(maps.Keys(m)) {
				m[k] = checkQuantities(m[k], t.Elem(), p.Key(k), errs)
			}
		}
	}
	return doc
}

func checkStruct(m map[string]any, t reflect.Type, p *field.Path, errs *field.ErrorList) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case name == "" && f.Anonymous: // inlined, as VolumeSource in Volume
			checkStruct(m, f.Type, p, errs)
		default:
			if name == "" {
				name = f.Name
			}
			if v, ok := m[name]; ok {
				m[name] = checkQuantities(v, f.Type, p.Child(name), errs)
			}
		}
	}
}

func checkQuantity(v any, p *field.Path, errs *field.ErrorList) any {
	var text string
	switch q := v.(type) {
	case nil:
		return v
	case string:
		text = q
	case json.Number:
		text = q.String()
	default:
		*errs = append(*errs, field.Invalid(p, v, "must be a quantity such as 8Gi, 500m or 2"))
		return "0"
	}
	if _, err := resource.ParseQuantity(text); err != nil {
		*errs = append(*errs, field.Invalid(p, text, "must be a quantity such as 8Gi, 500m or 2"))
		return "0"
	}
	return v
}

func nameOf(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return "", false
	}
	s, ok := m["name"].(string)
	return s, ok
}
