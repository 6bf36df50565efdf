// Package heldsway holds the vocabulary shared by every layer: domain types, the
// error type with its machine codes, and the service interfaces that the store and
// the API depend on. It imports no HTTP or SQL package.
package heldsway

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to exactly one HTTP status, in internal/api.
const (
	EUNAUTHORIZED      = "UNAUTHORIZED"
	EFORBIDDEN         = "FORBIDDEN"
	ENOTFOUND          = "NOT_FOUND"
	ECONFLICT          = "CONFLICT"
	EVALIDATION        = "VALIDATION_ERROR"
	ETRANSITION        = "INVALID_STATUS_TRANSITION"
	EIDEMPOTENCYREUSED = "IDEMPOTENCY_KEY_REUSED"
	ERATELIMITED       = "RATE_LIMITED"
	EPAYLOADTOOLARGE   = "PAYLOAD_TOO_LARGE"
	EUNAVAILABLE       = "SERVICE_UNAVAILABLE"
	EINTERNAL          = "INTERNAL_ERROR"
)

// Error is the one application error. Message is safe to show to a client; any
// wrapped cause is for logs only.
type Error struct {
	Code    string
	Message string
	// Details maps a field to its messages, for VALIDATION_ERROR; or carries
	// extra machine-readable context (such as an existing resource id).
	Details map[string]any
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("heldsway error: code=%s message=%s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("heldsway error: code=%s message=%s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an application error with a formatted client-facing message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of an application error, or EINTERNAL for any other error.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-facing message of an application error; other
// errors get a generic message so internals never leak.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "An internal error occurred."
}

// FieldErrors collects validation messages per field, in the shape clients see:
// {"field": ["message", ...]}.
type FieldErrors map[string][]string

// Add records msg for field.
func (f FieldErrors) Add(field, msg string) { f[field] = append(f[field], msg) }

// Err returns a VALIDATION_ERROR carrying the collected messages, or nil if none.
func (f FieldErrors) Err() error {
	if len(f) == 0 {
		return nil
	}
	d := make(map[string]any, len(f))
	for k, v := range f {
		d[k] = v
	}
	return &Error{Code: EVALIDATION, Message: "Validation failed", Details: d}
}

// Invalid is shorthand for a one-field validation error.
func Invalid(field, msg string) error {
	return &Error{Code: EVALIDATION, Message: "Validation failed", Details: map[string]any{field: []string{msg}}}
}

// NotFound is shorthand for a NOT_FOUND error naming the resource.
func NotFound(resource string) error {
	return Errorf(ENOTFOUND, "%s not found.", resource)
}
