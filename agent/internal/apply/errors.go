package apply

import (
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// ImmutableError is returned when an apply changes an immutable field and
// neither Replace=true nor Force=true allows a re-create.
type ImmutableError struct {
	Key    manifest.Key
	Fields []string
	Err    error
}

func (e *ImmutableError) Error() string {
	return fmt.Sprintf("apply %s: field %s is immutable; set the sync option Replace=true or Force=true to delete and re-create the object: %v",
		e.Key, strings.Join(e.Fields, ", "), e.Err)
}

func (e *ImmutableError) Unwrap() error { return e.Err }

// immutableFields returns the fields an Invalid error reports as immutable.
func immutableFields(err error) []string {
	var se *apierrors.StatusError
	if !errors.As(err, &se) || !apierrors.IsInvalid(err) {
		return nil
	}
	var fields []string
	if d := se.ErrStatus.Details; d != nil {
		for _, c := range d.Causes {
			if strings.Contains(c.Message, "immutable") {
				fields = append(fields, c.Field)
			}
		}
	}
	if len(fields) == 0 && strings.Contains(se.ErrStatus.Message, "immutable") {
		fields = append(fields, "(unnamed)")
	}
	return fields
}
