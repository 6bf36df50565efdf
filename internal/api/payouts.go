package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

// Balances, the ledger and adjustments of an affiliate; payouts, their status
// machine (digest §7.3), export and statement; payout requests (§7.4). Money is
// shown as everywhere else in the API: a JSON number with exactly the
// currency's decimals (Amount), read from a JSON number kept as text (Decimal).

// balanceView is an affiliate's position in one currency.
type balanceView struct {
	Currency  string `json:"currency" example:"USD"`
	Available Amount `json:"available" doc:"Sum of the affiliate's ledger entries: approved commission, less reversals, plus adjustments, less what went into payouts, plus failed payouts returned. May be negative after a reversal of paid commission; the next payouts net it off."`
	Pending   Amount `json:"pending" doc:"Commission not yet approved, net of refund reversals; not in the ledger until approved."`
	InFlight  Amount `json:"in_flight" doc:"Payouts pending or processing: neither available nor paid."`
	Paid      Amount `json:"paid" doc:"Payouts completed."`
}

type balanceOut struct {
	AffiliateID int64         `json:"affiliate_id"`
	Balances    []balanceView `json:"balances" doc:"One entry per currency the affiliate has money or movements in, by currency code; empty when none."`
}

func (s *Server) handleBalanceGet(ctx context.Context, in *idInput) (*Out[balanceOut], error) {
	bs, err := s.Store.Balances(ctx, principal(ctx).Workspace.ID, in.ID)
	if err != nil {
		return nil, err
	}
	out := balanceOut{AffiliateID: in.ID, Balances: make([]balanceView, 0, len(bs))}
	for _, b := range bs {
		cur := orderCurrency(b.Currency)
		amt := func(m int64) Amount { return Amount{Minor: m, Currency: cur} }
		out.Balances = append(out.Balances, balanceView{Currency: cur.Code, Available: amt(b.Available),
			Pending: amt(b.Pending), InFlight: amt(b.InFlight), Paid: amt(b.Paid)})
	}
	return ok("OK", out), nil
}

// ledgerEntryView is one append-only movement of an affiliate's balance.
type ledgerEntryView struct {
	ID           int64     `json:"id"`
	AffiliateID  int64     `json:"affiliate_id"`
	Currency     string    `json:"currency" example:"USD"`
	Kind         string    `json:"kind" enum:"commission_approved,commission_reversed,adjustment,payout,payout_returned" doc:"commission_approved: + a commission's net when approved; commission_reversed: − a refund's reversal of approved or paid commission; adjustment: ± a manual correction; payout: − the amount moved into a payout; payout_returned: + a failed payout's amount."`
	Amount       Amount    `json:"amount" doc:"Signed: credits to the affiliate are positive."`
	CommissionID *int64    `json:"commission_id" nullable:"true"`
	PayoutID     *int64    `json:"payout_id" nullable:"true"`
	Reason       *string   `json:"reason" nullable:"true" doc:"An adjustment's reason, or a failed payout's."`
	CreatedAt    Timestamp `json:"created_at"`
}

func viewLedgerEntry(e *heldsway.LedgerEntry) ledgerEntryView {
	return ledgerEntryView{ID: e.ID, AffiliateID: e.AffiliateID, Currency: e.Currency, Kind: e.Kind,
		Amount: Amount{Minor: e.Amount, Currency: orderCurrency(e.Currency)}, CommissionID: e.CommissionID,
		PayoutID: e.PayoutID, Reason: strOrNil(e.Reason), CreatedAt: Timestamp(e.CreatedAt)}
}

type ledgerListInput struct {
	ID int64 `path:"id" minimum:"1" doc:"Affiliate id."`
	ListParams
	Currency string `query:"currency" minLength:"3" maxLength:"3" doc:"Only entries in this currency (ISO 4217)."`
	Kind     string `query:"kind" enum:"commission_approved,commission_reversed,adjustment,payout,payout_returned" doc:"Only entries of this kind."`
}

func (s *Server) handleLedgerList(ctx context.Context, in *ledgerListInput) (*Out[Page[ledgerEntryView]], error) {
	o, err := in.options("id")
	if err != nil {
		return nil, err
	}
	res, err := s.Store.ListLedger(ctx, principal(ctx).Workspace.ID, in.ID,
		heldsway.LedgerFilter{Currency: in.Currency, Kind: in.Kind}, o)
	if err != nil {
		return nil, err
	}
	return ok("OK", pageOut(res, in.ListParams, o, viewLedgerEntry)), nil
}

// moneyIn converts amount in currency code to minor units, with field errors
// on "currency" and "amount" in the documented style.
func moneyIn(amount Decimal, code string) (int64, money.Currency, error) {
	cur, err := money.ParseCurrency(code)
	if err != nil {
		return 0, cur, heldsway.Invalid("currency", "The currency field "+err.Error()+".")
	}
	m, err := amount.Minor(cur)
	switch {
	case errors.Is(err, money.ErrPrecision) && cur.Scale == 0:
		return 0, cur, heldsway.Invalid("amount", fmt.Sprintf("The amount field must be a whole number for %s.", cur.Code))
	case errors.Is(err, money.ErrPrecision):
		return 0, cur, heldsway.Invalid("amount", fmt.Sprintf("The amount field must have at most %d decimal places for %s.", cur.Scale, cur.Code))
	case err != nil:
		return 0, cur, heldsway.Invalid("amount", "The amount field "+err.Error()+".")
	}
	return m, cur, nil
}

type adjustmentInput struct {
	ID   int64 `path:"id" minimum:"1" doc:"Affiliate id."`
	Body struct {
		Amount   Decimal `json:"amount" doc:"Signed amount in the currency's units with at most its decimals: positive credits the affiliate, negative debits it; not 0."`
		Currency string  `json:"currency" minLength:"3" maxLength:"3" doc:"ISO 4217 code." example:"USD"`
		Reason   string  `json:"reason" minLength:"1" maxLength:"500" doc:"Why; shown in the ledger and kept in the audit entry."`
	}
}

func (s *Server) handleAdjustmentCreate(ctx context.Context, in *adjustmentInput) (*Out[ledgerEntryView], error) {
	m, cur, err := moneyIn(in.Body.Amount, in.Body.Currency)
	if err != nil {
		return nil, err
	}
	e, err := s.Store.CreateAdjustment(ctx, principal(ctx).Workspace.ID, in.ID,
		heldsway.AdjustmentInput{Amount: m, Currency: cur.Code, Reason: in.Body.Reason})
	if err != nil {
		return nil, err
	}
	return ok("Adjustment recorded.", viewLedgerEntry(e)), nil
}
