package heldsway

import (
	"context"
	"encoding/json"
	"time"
)

// Order (conversion) statuses, digest §7.2.
const (
	OrderPending   = "pending"
	OrderApproved  = "approved"
	OrderRejected  = "rejected"
	OrderCancelled = "cancelled" // fully refunded or cancelled by the merchant
)

// Commission statuses.
const (
	CommissionPending  = "pending"
	CommissionApproved = "approved"
	CommissionRejected = "rejected"
	CommissionReversed = "reversed" // fully reversed by refunds
	CommissionPaid     = "paid"
)

// How an order was attributed, in the order the evidence is tried.
const (
	AttributionClick        = "click"         // click id from the redirect (hs_click)
	AttributionCoupon       = "coupon"        // an affiliate's coupon code
	AttributionReferralCode = "referral_code" // ?ref= code reported by the storefront
	AttributionCustomer     = "customer"      // the customer's binding from an earlier order
	AttributionNone         = "none"
)

// LineItem is one product line of an order. Price is the unit price in minor units.
type LineItem struct {
	ProductID string `json:"product_id"`
	Name      string `json:"name"`
	Category  string `json:"category"`
	Quantity  int64  `json:"quantity"`
	Price     int64  `json:"price"`
}

// OrderCustomer is the buyer as the merchant reports it.
type OrderCustomer struct {
	Email string `json:"email"`
	ID    string `json:"id"`
	Name  string `json:"name"`
}

// ConversionInput is a reported order, amounts already in minor units of Currency.
type ConversionInput struct {
	OrderID        string
	Currency       string
	Total          int64
	Subtotal       int64
	Discount       int64
	Tax            int64
	OccurredAt     time.Time
	Customer       OrderCustomer
	LineItems      []LineItem
	SubscriptionID string
	// Attribution evidence, tried in this order: click, coupon, referral code,
	// then the customer's binding.
	ClickID      string
	CouponCode   string
	ReferralCode string
	Metadata     json.RawMessage
}

// OrderAffiliate is the affiliate an order is attributed to, as orders show it.
type OrderAffiliate struct {
	ID           int64  `json:"id"`
	Name         string `json:"name"`
	ReferralCode string `json:"referral_code"`
}

// Order is a stored conversion with its commissions.
type Order struct {
	ID               int64
	WorkspaceID      int64
	OrderID          string
	Status           string
	Currency         string
	Total            int64
	Subtotal         int64
	Discount         int64
	Tax              int64
	RefundedAmount   int64
	CommissionAmount int64  // net of reversals
	CommissionRate   *int64 // first-tier rate in bp; nil for flat or none
	Affiliate        *OrderAffiliate
	ProgramID        *int64
	LinkID           *int64
	ClickID          string
	CouponID         *int64
	CouponCode       string
	CustomerID       *int64
	Customer         OrderCustomer
	SubscriptionID   string
	Attribution      string
	Flags            []string
	Metadata         json.RawMessage
	ConvertedAt      time.Time
	ApprovedAt       *time.Time
	RejectedAt       *time.Time
	CancelledAt      *time.Time
	AutoApproveAt    *time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
	Items            []LineItem
	Commissions      []*Commission
}

// Commission is what one beneficiary earns on one order.
type Commission struct {
	ID             int64
	WorkspaceID    int64
	OrderID        int64  // internal order id
	OrderRef       string // the merchant's order id
	AffiliateID    int64
	Tier           int
	Currency       string
	Amount         int64 // as computed; never changes
	ReversedAmount int64
	Rate           *int64
	Rule           string
	BaseAmount     int64
	Explanation    string
	Status         string
	PayoutID       *int64
	CreatedAt      time.Time
	ApprovedAt     *time.Time
	UpdatedAt      time.Time
}

// Net is the commission still owed after reversals.
func (c *Commission) Net() int64 { return c.Amount - c.ReversedAmount }

// OrderFilter selects orders; zero fields do not filter.
type OrderFilter struct {
	Search      string // merchant order id or affiliate name
	Status      string
	AffiliateID int64
	From, To    *time.Time // on converted_at, inclusive
}

// CommissionFilter selects commissions.
type CommissionFilter struct {
	AffiliateID int64
	Status      string
	From, To    *time.Time // on created_at, inclusive
}

// OrderStats aggregates the orders a filter selects, per currency.
type OrderStats struct {
	Currency        string
	TotalOrders     int64
	TotalRevenue    int64 // sum of subtotals (dashboard definition, digest §5.7)
	TotalCommission int64 // pending + approved
	Pending         int64 // commission awaiting approval
	Approved        int64 // commission approved for payout
}

// BulkResult is the outcome of one id in a bulk action.
type BulkResult struct {
	ID     int64
	Status string // the order's status after the action, if it succeeded
	Err    error
}

// OrderService records conversions and reviews them. Errors: ECONFLICT for a
// duplicate order_id (Details["order_id"] holds the existing internal id);
// EVALIDATION for bad input or unknown evidence references; ENOTFOUND for
// another workspace's or an unknown order; ETRANSITION for a review action not
// allowed from the order's status. Called by the API (conversions:write,
// orders:read, orders:write) and the auto-approval worker.
type OrderService interface {
	CreateConversion(ctx context.Context, wsID int64, in ConversionInput) (*Order, error)
	FindOrder(ctx context.Context, wsID, id int64) (*Order, error)
	ListOrders(ctx context.Context, wsID int64, f OrderFilter, o ListOptions) (PageResult[*Order], error)
	OrderStats(ctx context.Context, wsID int64, f OrderFilter) ([]OrderStats, error)
	ApproveOrder(ctx context.Context, wsID, id int64) (*Order, error)
	RejectOrder(ctx context.Context, wsID, id int64, reason string) (*Order, error)
	BulkReview(ctx context.Context, wsID int64, ids []int64, approve bool, reason string) ([]BulkResult, error)
	// RefundOrder records a refund of amount (nil: the rest of the order) and
	// reverses commissions in proportion.
	RefundOrder(ctx context.Context, wsID, id int64, amount *int64, reason string) (*Order, error)
	ListCommissions(ctx context.Context, wsID int64, f CommissionFilter, o ListOptions) (PageResult[*Commission], error)
	// AutoApproveDue approves up to limit pending orders whose auto-approval
	// time has passed and that meet the program's criteria; it returns how many.
	AutoApproveDue(ctx context.Context, now time.Time, limit int) (int, error)
}
