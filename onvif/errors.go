package onvif

import (
	"errors"
	"fmt"
)

// ErrorKind classifies a failed exchange with a camera so callers can react
// (ask for a new password, retry later, mark a feature as missing) without
// parsing messages.
type ErrorKind string

// Error kinds.
const (
	// KindAuth: the camera refused the credentials (SOAP NotAuthorized fault,
	// HTTP 401 after answering its challenge, HTTP 403) or needs some.
	KindAuth ErrorKind = "auth"
	// KindTimeout: no complete reply before the deadline.
	KindTimeout ErrorKind = "timeout"
	// KindCanceled: the caller's context was canceled.
	KindCanceled ErrorKind = "canceled"
	// KindNetwork: the connection could not be made or broke.
	KindNetwork ErrorKind = "network"
	// KindSOAPFault: the camera answered with a SOAP fault that is neither
	// about authentication nor about an unsupported operation.
	KindSOAPFault ErrorKind = "soap-fault"
	// KindHTTP: an HTTP status or body that is not a SOAP answer.
	KindHTTP ErrorKind = "http"
	// KindMalformed: the reply could not be parsed (truncated XML, not an
	// envelope, not an image).
	KindMalformed ErrorKind = "malformed"
	// KindTooLarge: the reply exceeded the configured size bound.
	KindTooLarge ErrorKind = "too-large"
	// KindUnsupported: the camera does not offer the operation or service.
	KindUnsupported ErrorKind = "unsupported"
	// KindInvalid: the caller passed an argument the package refuses.
	KindInvalid ErrorKind = "invalid"
	// KindInternal: a bug in this package was caught (a recovered panic).
	KindInternal ErrorKind = "internal"
)

// Error is a failed ONVIF operation against one camera.
type Error struct {
	// Op is the ONVIF operation or package function, e.g. "GetProfiles".
	Op string
	// XAddr is the service address the request went to.
	XAddr string
	// Kind classifies the failure.
	Kind ErrorKind
	// Detail is a human-readable explanation (fault code and reason, HTTP
	// status, parser position).
	Detail string
	// Err is the underlying error, if any.
	Err error
}

// Error renders the failure as "onvif <Op> at <XAddr>: <kind>: <detail>: <err>".
func (e *Error) Error() string {
	msg := "onvif " + e.Op
	if e.XAddr != "" {
		msg += " at " + e.XAddr
	}
	msg += ": " + string(e.Kind)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of the first *Error in err's chain, or "" when
// there is none.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// guard is deferred by exported methods: a panic below them becomes an
// *Error for that call instead of ending the process.
func guard(op, xaddr string, err *error) {
	if v := recover(); v != nil {
		*err = recovered(op, xaddr, v)
	}
}

// recovered converts a recovered panic value into an *Error so that a bug
// in the parsing code costs one camera one call, not the process.
func recovered(op, xaddr string, v any) *Error {
	return &Error{Op: op, XAddr: xaddr, Kind: KindInternal, Detail: fmt.Sprintf("recovered panic: %v", v)}
}
