package heldsway

import "fmt"

// Sorts of the order list (digest §5.7). Ties are broken by id.
const (
	OrderSortConvertedAt      = "converted_at" // default
	OrderSortOrderID          = "order_id"
	OrderSortOrderTotal       = "order_total"
	OrderSortCommissionAmount = "commission_amount"
	OrderSortStatus           = "status"
)

// Sorts of the commission list.
const (
	CommissionSortCreatedAt = "created_at" // default
	CommissionSortAmount    = "amount"
)

// MaxBulkReview is how many ids one bulk approve or reject takes.
const MaxBulkReview = 100

// OrderTransitionError is the INVALID_STATUS_TRANSITION of a review action
// (approve, reject, refund) on an order whose status does not allow it. The
// message names the status, so a client can tell "already approved" from
// "rejected" without a second call.
func OrderTransitionError(action, from string) error {
	var msg, to string
	switch action {
	case "approve":
		to = OrderApproved
		msg = fmt.Sprintf("Cannot approve an order whose status is %s: only pending orders can be approved.", from)
	case "reject":
		to = OrderRejected
		msg = fmt.Sprintf("Cannot reject an order whose status is %s: only pending orders can be rejected.", from)
	default:
		msg = fmt.Sprintf("Cannot %s an order whose status is %s.", action, from)
	}
	d := map[string]any{"from": from}
	if to != "" {
		d["to"] = to
	}
	return &Error{Code: ETRANSITION, Message: msg, Details: d}
}
