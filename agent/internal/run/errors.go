package run

import (
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sharedid "github.com/flotilla-cd/flotilla/shared/identity"
)

// permanent decides which enrolment errors retrying cannot fix: a refused
// token, a bad request, or a hub whose CA does not match the pin.
func permanent(err error) bool {
	if errors.Is(err, sharedid.ErrPinMismatch) {
		return true
	}
	switch status.Code(errors.Unwrap(err)) {
	case codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument:
		return true
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument:
			return true
		}
	}
	return false
}
