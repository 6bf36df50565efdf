package heldsway

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heldsway/heldsway/internal/money"
)

// MaxPayoutRequestNote bounds the note an affiliate attaches to a request, and
// MaxPayoutRequestReason the reason a business gives when it rejects one.
const (
	MaxPayoutRequestNote   = 1000
	MaxPayoutRequestReason = 1000
)

// PayoutRequestInput is an early payout request: Amount minor units of
// Currency, more than 0, at most what the affiliate can request.
type PayoutRequestInput struct {
	Amount   int64
	Currency string
	Note     string
}

// Validate checks the input and normalises the currency code and note.
// Errors: EVALIDATION with field details.
func (in *PayoutRequestInput) Validate() error {
	c := fieldCheck{FieldErrors{}}
	if cur, err := money.ParseCurrency(in.Currency); err != nil {
		if strings.TrimSpace(in.Currency) == "" {
			c.addf("currency", "is required.")
		} else {
			c.addf("currency", "%s.", err.Error())
		}
	} else {
		in.Currency = cur.Code
	}
	switch {
	case in.Amount <= 0:
		c.addf("amount", "must be greater than 0.")
	case in.Amount > money.MaxMinor:
		c.addf("amount", "is out of range.")
	}
	in.Note = strings.TrimSpace(in.Note)
	if !utf8.ValidString(in.Note) {
		c.addf("note", "must be valid UTF-8.")
	} else if utf8.RuneCountInString(in.Note) > MaxPayoutRequestNote {
		c.addf("note", "must not be greater than %d characters.", MaxPayoutRequestNote)
	}
	return c.Err()
}

// PayoutRequestFilter selects payout requests; zero fields do not filter.
type PayoutRequestFilter struct {
	Status      string
	AffiliateID int64
}

// PayoutAffiliate is the affiliate a payout or request belongs to, as lists,
// exports and statements show it. Email is where a PayPal payout goes.
type PayoutAffiliate struct {
	ID    int64
	Name  string
	Email string
}

// PayoutItem is one commission a payout settles, with the amount it settled
// (the commission's net when the payout was created; a later reversal does
// not change what was paid) and the date of its order.
type PayoutItem struct {
	Commission *Commission
	Amount     int64
	OrderDate  time.Time
}

// PayoutListFilter selects payouts for the list, the export and the stats;
// zero fields do not filter.
type PayoutListFilter struct {
	PayoutFilter
	Currency string
	Search   string // affiliate name or e-mail, or external reference
}

// PayoutStats are the dashboard's payout figures (digest §5.10).
type PayoutStats struct {
	// Currencies: per currency, what is awaiting payment and what was paid
	// this month; amounts of different currencies are never added.
	Currencies []PayoutCurrencyStats
	// PendingAffiliates counts the affiliates with a payout awaiting payment
	// (pending or processing), whatever the currency.
	PendingAffiliates int64
	// PendingRequests counts the payout requests awaiting a decision.
	PendingRequests int64
	// The calendar month "this month" means, in the workspace's time zone.
	Timezone             string
	MonthStart, MonthEnd time.Time // [MonthStart, MonthEnd)
}

// PayoutCurrencyStats are one currency's payout figures.
type PayoutCurrencyStats struct {
	Currency                  string
	PendingAmount             int64 // payouts pending or processing
	PendingPayouts            int64
	CompletedThisMonth        int64 // payouts completed in the month
	CompletedThisMonthPayouts int64
}

// PayoutBulkResult is the outcome of one id in a bulk payout action: the
// payout after the action, or why it failed.
type PayoutBulkResult struct {
	ID     int64
	Payout *Payout
	Err    error
}
