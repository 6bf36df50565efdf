package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// statusOf maps each error code to its HTTP status. This is the only place.
var statusOf = map[string]int{
	heldsway.EUNAUTHORIZED:      http.StatusUnauthorized,
	heldsway.EFORBIDDEN:         http.StatusForbidden,
	heldsway.ENOTFOUND:          http.StatusNotFound,
	heldsway.ECONFLICT:          http.StatusConflict,
	heldsway.EVALIDATION:        http.StatusUnprocessableEntity,
	heldsway.ETRANSITION:        http.StatusConflict,
	heldsway.EIDEMPOTENCYREUSED: http.StatusUnprocessableEntity,
	heldsway.ERATELIMITED:       http.StatusTooManyRequests,
	heldsway.EPAYLOADTOOLARGE:   http.StatusRequestEntityTooLarge,
	heldsway.EUNAVAILABLE:       http.StatusServiceUnavailable,
	heldsway.EINTERNAL:          http.StatusInternalServerError,
}

// ErrorBody is the error envelope: {"success":false,"error":{code,message,details}}.
type ErrorBody struct {
	Success bool      `json:"success"`
	Err     ErrorInfo `json:"error"`
	status  int
}

// ErrorInfo is the error object inside the envelope.
type ErrorInfo struct {
	Code    string         `json:"code" doc:"Machine-readable code, e.g. VALIDATION_ERROR." enum:"UNAUTHORIZED,FORBIDDEN,NOT_FOUND,CONFLICT,VALIDATION_ERROR,INVALID_STATUS_TRANSITION,IDEMPOTENCY_KEY_REUSED,RATE_LIMITED,PAYLOAD_TOO_LARGE,SERVICE_UNAVAILABLE,INTERNAL_ERROR"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty" doc:"For VALIDATION_ERROR, each bad field mapped to a list of messages."`
}

func (e *ErrorBody) Error() string  { return e.Err.Code + ": " + e.Err.Message }
func (e *ErrorBody) GetStatus() int { return e.status }

// errorBody builds the envelope for an application error.
func errorBody(err error) *ErrorBody {
	code := heldsway.ErrorCode(err)
	b := &ErrorBody{Err: ErrorInfo{Code: code, Message: heldsway.ErrorMessage(err)}, status: statusOf[code]}
	var he *heldsway.Error
	if errors.As(err, &he) {
		b.Err.Details = he.Details
	}
	if b.status == 0 {
		b.status = http.StatusInternalServerError
	}
	return b
}

// newHumaError replaces huma.NewErrorWithContext so that every error huma writes
// (its own validation errors and the errors handlers return) uses our envelope.
func newHumaError(hctx huma.Context, status int, msg string, errs ...error) huma.StatusError {
	for _, err := range errs {
		var he *heldsway.Error
		if errors.As(err, &he) {
			if he.Code == heldsway.EINTERNAL || he.Code == heldsway.EUNAVAILABLE {
				logError(hctx, err)
			}
			return errorBody(he)
		}
		// withCommon's MaxBytesReader cut a body without Content-Length short;
		// huma reports the failed read as a 500.
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorBody(heldsway.Errorf(heldsway.EPAYLOADTOOLARGE, "The request body must not be larger than 1 MiB."))
		}
	}
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusUnsupportedMediaType:
		return errorBody(&heldsway.Error{Code: heldsway.EVALIDATION, Message: "Validation failed",
			Details: validationDetails(status, errs)})
	case http.StatusRequestEntityTooLarge:
		return errorBody(heldsway.Errorf(heldsway.EPAYLOADTOOLARGE, "The request body must not be larger than 1 MiB."))
	case http.StatusNotFound:
		return errorBody(heldsway.NotFound("Resource"))
	case 0:
		// huma calls this with status 0 only to learn the error type for the spec.
		return &ErrorBody{}
	}
	if status >= 500 {
		for _, err := range errs {
			logError(hctx, err)
		}
		return errorBody(&heldsway.Error{Code: heldsway.EINTERNAL, Message: "An internal error occurred."})
	}
	return &ErrorBody{Err: ErrorInfo{Code: strings.ToUpper(strings.ReplaceAll(http.StatusText(status), " ", "_")), Message: msg}, status: status}
}

func logError(hctx huma.Context, err error) {
	ctx := context.Background()
	if hctx != nil {
		ctx = hctx.Context()
	}
	slog.ErrorContext(ctx, "request failed", "request_id", requestID(ctx), "err", err)
}

var (
	reRequired = regexp.MustCompile(`^expected required property (\S+) to be present$`)
	reMaxLen   = regexp.MustCompile(`^expected length <= (\d+)$`)
	reMinLen   = regexp.MustCompile(`^expected length >= (\d+)$`)
	reMin      = regexp.MustCompile(`^expected number >= (\S+)$`)
	reMax      = regexp.MustCompile(`^expected number <= (\S+)$`)
	reExMin    = regexp.MustCompile(`^expected number > (\S+)$`)
	reOneOf    = regexp.MustCompile(`^expected value to be one of "(.*)"$`)
	reMaxItems = regexp.MustCompile(`^expected array length <= (\d+)$`)
	reMinItems = regexp.MustCompile(`^expected array length >= (\d+)$`)
	reIndex    = regexp.MustCompile(`\[(\d+)\]`)
)

// validationDetails turns huma's validation errors into {"field": ["message"]},
// with messages in the documented style ("The api key field is required.").
func validationDetails(status int, errs []error) map[string]any {
	fe := heldsway.FieldErrors{}
	for _, err := range errs {
		var d *huma.ErrorDetail
		if !errors.As(err, &d) {
			fe.Add("body", "The request is invalid.")
			continue
		}
		field, msg := translate(status, d.Location, d.Message)
		fe.Add(field, msg)
	}
	if len(fe) == 0 {
		fe.Add("body", "The request is invalid.")
	}
	out := make(map[string]any, len(fe))
	for k, v := range fe {
		out[k] = v
	}
	return out
}

func translate(status int, location, msg string) (string, string) {
	field := location
	for _, p := range []string{"body.", "query.", "path.", "header."} {
		field = strings.TrimPrefix(field, p)
	}
	field = reIndex.ReplaceAllString(field, ".$1")
	if location == "body" {
		field = ""
	}
	switch status {
	case http.StatusUnsupportedMediaType:
		return "body", "The request body must be JSON (Content-Type: application/json)."
	case http.StatusBadRequest:
		if strings.HasPrefix(location, "body") {
			if strings.Contains(msg, "cannot unmarshal") {
				return "body", "The request body has a value of the wrong type."
			}
			return "body", "The request body must be valid JSON."
		}
	}
	if m := reRequired.FindStringSubmatch(msg); m != nil {
		f := join(field, m[1])
		return f, fmt.Sprintf("The %s field is required.", human(f))
	}
	if field == "" {
		field = "body"
	}
	h := human(field)
	switch {
	case msg == "unexpected property":
		return field, fmt.Sprintf("The %s field is not allowed.", h)
	case msg == "expected string":
		return field, fmt.Sprintf("The %s field must be a string.", h)
	case msg == "expected integer":
		return field, fmt.Sprintf("The %s field must be an integer.", h)
	case msg == "expected number":
		return field, fmt.Sprintf("The %s field must be a number.", h)
	case msg == "expected boolean":
		return field, fmt.Sprintf("The %s field must be true or false.", h)
	case msg == "expected array":
		return field, fmt.Sprintf("The %s field must be an array.", h)
	case msg == "expected object":
		return field, fmt.Sprintf("The %s field must be an object.", h)
	case strings.HasPrefix(msg, "expected string to be RFC 5322 email"):
		return field, fmt.Sprintf("The %s field must be a valid email address.", h)
	case strings.HasPrefix(msg, "expected string to be RFC 3339 date-time"):
		return field, fmt.Sprintf("The %s field must be a valid RFC 3339 date-time.", h)
	case strings.HasPrefix(msg, "expected string to be RFC 3339 date"):
		return field, fmt.Sprintf("The %s field must be a date in YYYY-MM-DD format.", h)
	case strings.HasPrefix(msg, "expected string to be RFC 3986 uri"):
		return field, fmt.Sprintf("The %s field must be a valid URL.", h)
	case strings.HasPrefix(msg, "invalid integer") || strings.HasPrefix(msg, "invalid int"):
		return field, fmt.Sprintf("The %s field must be an integer.", h)
	}
	if m := reMaxLen.FindStringSubmatch(msg); m != nil {
		return field, fmt.Sprintf("The %s field must not be greater than %s characters.", h, m[1])
	}
	if m := reMinLen.FindStringSubmatch(msg); m != nil {
		if m[1] == "1" {
			return field, fmt.Sprintf("The %s field is required.", h)
		}
		return field, fmt.Sprintf("The %s field must be at least %s characters.", h, m[1])
	}
	if m := reMin.FindStringSubmatch(msg); m != nil {
		return field, fmt.Sprintf("The %s field must be at least %s.", h, m[1])
	}
	if m := reExMin.FindStringSubmatch(msg); m != nil {
		return field, fmt.Sprintf("The %s field must be greater than %s.", h, m[1])
	}
	if m := reMax.FindStringSubmatch(msg); m != nil {
		return field, fmt.Sprintf("The %s field must not be greater than %s.", h, m[1])
	}
	if m := reOneOf.FindStringSubmatch(msg); m != nil {
		return field, fmt.Sprintf("The selected %s is invalid. Allowed: %s.", h, m[1])
	}
	if m := reMaxItems.FindStringSubmatch(msg); m != nil {
		return field, fmt.Sprintf("The %s field must not have more than %s items.", h, m[1])
	}
	if m := reMinItems.FindStringSubmatch(msg); m != nil {
		return field, fmt.Sprintf("The %s field must have at least %s items.", h, m[1])
	}
	return field, fmt.Sprintf("The %s field is invalid: %s.", h, msg)
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// human renders a field path the way the documented messages do: "api_key" →
// "api key", "links.0.slug" → "links.0.slug".
func human(field string) string {
	if strings.Contains(field, ".") {
		return field
	}
	return strings.ReplaceAll(field, "_", " ")
}

// writeError writes an error envelope from a plain net/http handler.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	b := errorBody(err)
	if b.status >= 500 {
		slog.ErrorContext(r.Context(), "request failed", "request_id", requestID(r.Context()), "err", err)
	}
	writeJSON(w, b.status, b)
}
