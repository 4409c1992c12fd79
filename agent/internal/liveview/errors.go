package liveview

import (
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// codeError is an error with the code the hub gets for it.
type codeError struct {
	code apiv1alpha1.LiveResponse_Code
	msg  string
}

func (e *codeError) Error() string { return e.msg }

func invalid(format string, args ...any) error {
	return &codeError{apiv1alpha1.LiveResponse_CODE_INVALID, fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &codeError{apiv1alpha1.LiveResponse_CODE_NOT_FOUND, fmt.Sprintf(format, args...)}
}

func notOwned(format string, args ...any) error {
	return &codeError{apiv1alpha1.LiveResponse_CODE_NOT_OWNED, fmt.Sprintf(format, args...)}
}

// errorResponse is the last frame of a request that failed with err.
func errorResponse(err error) *apiv1alpha1.LiveResponse {
	var ce *codeError
	switch {
	case errors.As(err, &ce):
		return &apiv1alpha1.LiveResponse{Code: ce.code, Message: ce.msg}
	case apierrors.IsNotFound(err):
		return &apiv1alpha1.LiveResponse{Code: apiv1alpha1.LiveResponse_CODE_NOT_FOUND, Message: err.Error()}
	default:
		return &apiv1alpha1.LiveResponse{Code: apiv1alpha1.LiveResponse_CODE_FAILED, Message: err.Error()}
	}
}
