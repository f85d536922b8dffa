package profile

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The typed decode stops at the first value of the wrong type (YAML 1.1 reads `name: y` as
// true, `gpu: yes` as a bool) or the first quantity that does not parse, and names neither the
// profile nor the index. checkTypes runs before it: it walks the decoded document along the Go
// types of File, reports every such value with its path, and removes it (a bad quantity becomes
// "0"), so the typed decode and the validation that follow report everything else too.

var (
	quantityType    = reflect.TypeFor[resource.Quantity]()
	profileType     = reflect.TypeFor[Profile]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// TypeErrors reports every value of doc (decoded JSON with json.Number for numbers) that the Go
// type t cannot hold, each with its path under root, in words rather than Go types. doc is
// changed: those values are removed.
func TypeErrors(doc any, t reflect.Type, root *field.Path) field.ErrorList {
	var errs field.ErrorList
	checkTypes(doc, t, root, &errs)
	return errs
}

// checkTypes returns the value to keep in place of doc, and false when doc is to be removed.
func checkTypes(doc any, t reflect.Type, p *field.Path, errs *field.ErrorList) (any, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if doc == nil { // null leaves the zero value
		return doc, true
	}
	if t == quantityType {
		return checkQuantity(doc, p, errs), true
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return doc, true // a type that reads itself: the typed decode judges it (see Parse)
	}
	bad := func(want string) (any, bool) {
		*errs = append(*errs, wrongType(p, doc, want))
		return nil, false
	}
	switch t.Kind() {
	case reflect.String:
		if _, ok := doc.(string); !ok {
			return bad("a string")
		}
	case reflect.Bool:
		if _, ok := doc.(bool); !ok {
			return bad("true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n, ok := doc.(json.Number); !ok {
			return bad("a whole number")
		} else if _, err := strconv.ParseInt(n.String(), 10, t.Bits()); err != nil {
			return bad(fmt.Sprintf("a whole number that fits in %d bits", t.Bits()))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n, ok := doc.(json.Number); !ok {
			return bad("a whole number")
		} else if _, err := strconv.ParseUint(n.String(), 10, t.Bits()); err != nil {
			return bad(fmt.Sprintf("a whole number from 0 that fits in %d bits", t.Bits()))
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := doc.(json.Number); !ok {
			return bad("a number")
		}
	case reflect.Struct:
		m, ok := doc.(map[string]any)
		if !ok {
			return bad("an object (key: value)")
		}
		checkStruct(m, t, p, errs)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return doc, true // []byte is base64 text: the typed decode judges it
		}
		l, ok := doc.([]any)
		if !ok {
			return bad("a list")
		}
		for i := range l {
			ip := p.Index(i)
			if name := nameOf(l[i]); t.Elem() == profileType && name != "" {
				ip = p.Key(name) // profiles are named by name, as in every other message
			}
			l[i], _ = checkTypes(l[i], t.Elem(), ip, errs) // a removed element stays as null
		}
	case reflect.Map:
		m, ok := doc.(map[string]any)
		if !ok {
			return bad("an object (key: value)")
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if v, ok := checkTypes(m[k], t.Elem(), p.Key(k), errs); ok {
				m[k] = v
			} else {
				delete(m, k)
			}
		}
	}
	return doc, true
}

func checkStruct(m map[string]any, t reflect.Type, p *field.Path, errs *field.ErrorList) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported() && !f.Anonymous:
		case name == "" && f.Anonymous: // inlined, as VolumeSource in Volume
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				checkStruct(m, ft, p, errs)
			}
		default:
			if name == "" {
				name = f.Name
			}
			if v, ok := m[name]; ok {
				if v, ok := checkTypes(v, f.Type, p.Child(name), errs); ok {
					m[name] = v
				} else {
					delete(m, name)
				}
			}
		}
	}
}

// wrongType says what was found and what the field takes. A scalar where text is expected is
// almost always YAML reading y, no, on or 0777 as something else: quoting it keeps it text.
func wrongType(p *field.Path, v any, want string) *field.Error {
	switch v.(type) {
	case bool, json.Number:
		if want == "a string" {
			want += " (quote it)"
		}
		return field.Invalid(p, v, "must be "+want)
	case string:
		return field.Invalid(p, v, "must be "+want)
	case []any:
		return field.Invalid(p, field.OmitValueType{}, "got a list, must be "+want)
	default:
		return field.Invalid(p, field.OmitValueType{}, "got an object, must be "+want)
	}
}

func checkQuantity(v any, p *field.Path, errs *field.ErrorList) any {
	var text string
	switch q := v.(type) {
	case string:
		text = q
	case json.Number:
		text = q.String()
	default:
		*errs = append(*errs, wrongType(p, v, "a quantity such as 8Gi, 500m or 2"))
		return "0"
	}
	if _, err := resource.ParseQuantity(text); err != nil {
		*errs = append(*errs, field.Invalid(p, text, "must be a quantity such as 8Gi, 500m or 2"))
		return "0"
	}
	return v
}

// nameOf is the name field of an object, "" when there is none or it is not text.
func nameOf(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["name"].(string)
	return s
}
