package heldsway

import "time"

// Ledger entry kinds. Credits to the affiliate are positive amounts.
const (
	LedgerCommissionApproved = "commission_approved" // + the commission's amount when approved
	LedgerCommissionReversed = "commission_reversed" // − a reversal of an approved or paid commission
	LedgerAdjustment         = "adjustment"          // ± a manual correction with a reason
	LedgerPayout             = "payout"              // − the amount moved into a payout
	LedgerPayoutReturned     = "payout_returned"     // + the amount of a failed payout, back to available
)

// Payout statuses, digest §7.3: pending → processing → completed, and
// pending/processing → failed. completed and failed are final.
const (
	PayoutPending    = "pending"
	PayoutProcessing = "processing"
	PayoutCompleted  = "completed"
	PayoutFailed     = "failed"
)

// Payout request statuses.
const (
	PayoutRequestPending  = "pending"
	PayoutRequestApproved = "approved"
	PayoutRequestRejected = "rejected"
)

// Payout frequencies (PayoutWeekly, …) live with the payout settings in settings.go.

// LedgerEntry is one append-only movement of an affiliate's balance.
type LedgerEntry struct {
	ID           int64
	WorkspaceID  int64
	AffiliateID  int64
	Currency     string
	Kind         string
	Amount       int64
	CommissionID *int64
	PayoutID     *int64
	Reason       string
	CreatedAt    time.Time
}

// Balance is an affiliate's position in one currency. Pending is commission not
// yet approved; in-flight payouts are neither available nor paid.
type Balance struct {
	Currency  string
	Available int64
	Pending   int64
	InFlight  int64
	Paid      int64
}

// Payout is money on its way to (or paid to) an affiliate.
type Payout struct {
	ID                int64
	WorkspaceID       int64
	AffiliateID       int64
	Currency          string
	Amount            int64
	Status            string
	Method            string
	RunID             *int64
	RequestID         *int64
	ExternalReference string
	FailureReason     string
	ProcessingAt      *time.Time
	CompletedAt       *time.Time
	FailedAt          *time.Time
	CreatedAt         time.Time
	UpdatedAt         time.Time
	// Commissions the payout settles, loaded for detail views and statements.
	Commissions []*Commission
	// Affiliate is loaded by the API's reads (lists, detail, export).
	Affiliate *PayoutAffiliate
	// Items are the commissions with the amounts the payout settled, loaded
	// for the detail view and the statement.
	Items []PayoutItem
}

// PayoutRequest is an affiliate's request for an early payout.
type PayoutRequest struct {
	ID          int64
	WorkspaceID int64
	AffiliateID int64
	Currency    string
	Amount      int64
	Status      string
	PayoutID    *int64
	Note        string
	Reason      string
	CreatedAt   time.Time
	DecidedAt   *time.Time
	UpdatedAt   time.Time
	// Affiliate is loaded by the API's reads.
	Affiliate *PayoutAffiliate
}

// PayoutFilter selects payouts.
type PayoutFilter struct {
	Status      string
	AffiliateID int64
	From, To    *time.Time // on created_at, inclusive
}
