package web

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/gin-gonic/gin"

	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/store"
)

// auditAppender is the part of the audit log every resource writes to.
type auditAppender interface {
	Append(r audit.Record) (audit.Record, error)
	AppendTx(tx *store.Tx, r audit.Record) (audit.Record, error)
}

// auditTrail records what callers do, for every resource alike: events
// that change nothing in a transaction of their own (record), changes
// inside the transaction of the change (audited, appendIn). Without an
// audit log it records nothing.
type auditTrail struct {
	to  auditAppender // nil: no audit log
	log *slog.Logger
}

// record appends an event that changes nothing else (a login, a view, an
// export) to the audit log in a transaction of its own; a failure is
// logged, never shown to the caller. A change is recorded with audited
// instead, inside its own transaction.
func (t auditTrail) record(r audit.Record) {
	if t.to == nil {
		return
	}
	if _, err := t.to.Append(r); err != nil {
		t.log.Error("audit append failed", "action", r.Action, "err", err)
	}
}

// errAuditFailed marks a change rolled back because its audit record could
// not be written.
var errAuditFailed = errors.New("audit record not written")

// audited returns a hook for a domain store's mutating method that appends
// r inside the transaction of the change r records: the change and its
// record commit together, and if the record cannot be written the change
// is rolled back.
func (t auditTrail) audited(r audit.Record) store.TxHook {
	return func(tx *store.Tx) error { return t.appendIn(tx, r) }
}

// appendIn appends r inside tx, the transaction of the change r records;
// without an audit log it does nothing.
func (t auditTrail) appendIn(tx *store.Tx, r audit.Record) error {
	if t.to == nil {
		return nil
	}
	if _, err := t.to.AppendTx(tx, r); err != nil {
		t.log.Error("audit append failed; the change it records is rolled back", "action", r.Action, "err", err)
		return fmt.Errorf("%w: %w", errAuditFailed, err)
	}
	return nil
}

// recordBy audits an action of the caller that changes nothing. detail
// must never hold a password or token.
func (t auditTrail) recordBy(c *gin.Context, action string, detail map[string]string) {
	t.record(byCaller(c, action, detail))
}

// auditedBy is the hook recording a change made by the caller inside the
// change's transaction (see audited). detail must never hold a password or
// token.
func (t auditTrail) auditedBy(c *gin.Context, action string, detail map[string]string) store.TxHook {
	return t.audited(byCaller(c, action, detail))
}

// byCaller is the record of an action of the caller.
func byCaller(c *gin.Context, action string, detail map[string]string) audit.Record {
	return audit.Record{User: currentUser(c).Username, Action: action, ClientIP: c.ClientIP(), Detail: detail}
}
