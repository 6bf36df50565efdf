package api

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

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

// payoutAffiliateView is the affiliate a payout or request belongs to.
type payoutAffiliateView struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email" doc:"Where a PayPal payout is sent."`
}

func viewPayoutAffiliate(a *heldsway.PayoutAffiliate) *payoutAffiliateView {
	if a == nil {
		return nil
	}
	return &payoutAffiliateView{ID: a.ID, Name: a.Name, Email: a.Email}
}

// payoutItemView is one commission a payout settles.
type payoutItemView struct {
	CommissionID   int64     `json:"commission_id"`
	ConversionID   int64     `json:"conversion_id" doc:"Internal id of the order (GET /v1/orders/{id})."`
	OrderID        string    `json:"order_id" doc:"The merchant's order id." example:"#135419"`
	OrderDate      Timestamp `json:"order_date" doc:"When the order happened (converted_at)."`
	Tier           int       `json:"tier"`
	Amount         Amount    `json:"amount" doc:"What this payout paid for the commission: its net when the payout was created."`
	ReversedAmount Amount    `json:"reversed_amount" doc:"Reversed by refunds so far; a reversal after the payout is carried to the next payout as a negative balance."`
	Status         string    `json:"status" enum:"pending,approved,rejected,reversed,paid" doc:"The commission's status now."`
}

// payoutView is the payout object.
type payoutView struct {
	ID                int64                `json:"id"`
	AffiliateID       int64                `json:"affiliate_id"`
	Affiliate         *payoutAffiliateView `json:"affiliate"`
	Currency          string               `json:"currency" example:"USD"`
	Amount            Amount               `json:"amount"`
	Status            string               `json:"status" enum:"pending,processing,completed,failed"`
	Method            string               `json:"method" enum:"manual,paypal,bank"`
	RunID             *int64               `json:"run_id" nullable:"true" doc:"The payout run that created it, if any."`
	RequestID         *int64               `json:"request_id" nullable:"true" doc:"The payout request whose approval created it, if any."`
	ExternalReference *string              `json:"external_reference" nullable:"true" doc:"Given on complete, e.g. the payment provider's transaction id."`
	FailureReason     *string              `json:"failure_reason" nullable:"true"`
	ProcessingAt      *Timestamp           `json:"processing_at" nullable:"true"`
	CompletedAt       *Timestamp           `json:"completed_at" nullable:"true"`
	FailedAt          *Timestamp           `json:"failed_at" nullable:"true"`
	CreatedAt         Timestamp            `json:"created_at"`
	UpdatedAt         Timestamp            `json:"updated_at"`
	Commissions       *[]payoutItemView    `json:"commissions,omitempty" doc:"The commissions the payout settles, oldest order first; only on GET /v1/payouts/{id}."`
	CommissionsTotal  *Amount              `json:"commissions_total,omitempty" doc:"Sum of the commissions' amounts; amount − commissions_total is balance from adjustments or reversals the payout settled too. Only on GET /v1/payouts/{id}."`
}

func viewPayout(p *heldsway.Payout) payoutView {
	cur := orderCurrency(p.Currency)
	v := payoutView{ID: p.ID, AffiliateID: p.AffiliateID, Affiliate: viewPayoutAffiliate(p.Affiliate), Currency: cur.Code,
		Amount: Amount{Minor: p.Amount, Currency: cur}, Status: p.Status, Method: p.Method, RunID: p.RunID,
		RequestID: p.RequestID, ExternalReference: strOrNil(p.ExternalReference), FailureReason: strOrNil(p.FailureReason),
		ProcessingAt: tsPtr(p.ProcessingAt), CompletedAt: tsPtr(p.CompletedAt), FailedAt: tsPtr(p.FailedAt),
		CreatedAt: Timestamp(p.CreatedAt), UpdatedAt: Timestamp(p.UpdatedAt)}
	if p.Items != nil {
		items := make([]payoutItemView, 0, len(p.Items))
		var total int64
		for _, it := range p.Items {
			c := it.Commission
			total += it.Amount
			items = append(items, payoutItemView{CommissionID: c.ID, ConversionID: c.OrderID, OrderID: c.OrderRef,
				OrderDate: Timestamp(it.OrderDate), Tier: c.Tier, Amount: Amount{Minor: it.Amount, Currency: cur},
				ReversedAmount: Amount{Minor: c.ReversedAmount, Currency: cur}, Status: c.Status})
		}
		v.Commissions = &items
		v.CommissionsTotal = &Amount{Minor: total, Currency: cur}
	}
	return v
}

// PayoutFilterParams are the filters the payout list and export share.
type PayoutFilterParams struct {
	DateRange
	Status      string `query:"status" enum:"pending,processing,completed,failed" doc:"Only payouts with this status."`
	AffiliateID int64  `query:"affiliate_id" minimum:"1" doc:"Only this affiliate's payouts; must be one of this workspace's affiliates (422 otherwise)."`
	Currency    string `query:"currency" minLength:"3" maxLength:"3" doc:"Only payouts in this currency (ISO 4217)."`
	Search      string `query:"search" maxLength:"255" doc:"Case-insensitive substring of the affiliate's name or e-mail, or of the external reference."`
}

// filter validates the date range (on created_at, UTC days, inclusive).
func (p PayoutFilterParams) filter() (heldsway.PayoutListFilter, error) {
	from, to, err := p.DateRange.bounds()
	return heldsway.PayoutListFilter{PayoutFilter: heldsway.PayoutFilter{Status: p.Status, AffiliateID: p.AffiliateID,
		From: from, To: to}, Currency: p.Currency, Search: p.Search}, err
}

type payoutListInput struct {
	ListParams
	PayoutFilterParams
	Sort string `query:"sort" enum:"created_at" default:"created_at" doc:"Sort field; ties are broken by id."`
}

func (s *Server) handlePayoutList(ctx context.Context, in *payoutListInput) (*Out[Page[payoutView]], error) {
	f, err := in.filter()
	if err != nil {
		return nil, err
	}
	o, err := in.options(in.Sort)
	if err != nil {
		return nil, err
	}
	res, err := s.Store.ListPayouts(ctx, principal(ctx).Workspace.ID, f, o)
	if err != nil {
		return nil, err
	}
	return ok("OK", pageOut(res, in.ListParams, o, viewPayout)), nil
}

func (s *Server) handlePayoutGet(ctx context.Context, in *payoutIDInput) (*Out[payoutView], error) {
	p, err := s.Store.FindPayout(ctx, principal(ctx).Workspace.ID, in.ID, true)
	if err != nil {
		return nil, err
	}
	return ok("OK", viewPayout(p)), nil
}

type payoutIDInput struct {
	ID int64 `path:"id" minimum:"1" doc:"Payout id."`
}

// payoutCurrencyStatsView is one currency's payout figures.
type payoutCurrencyStatsView struct {
	Currency                  string `json:"currency" example:"USD"`
	PendingAmount             Amount `json:"pending_amount" doc:"Payouts awaiting payment: pending or processing."`
	PendingPayouts            int64  `json:"pending_payouts" doc:"How many payouts pending_amount sums."`
	CompletedThisMonth        Amount `json:"completed_this_month" doc:"Payouts completed in the current calendar month of the workspace's time zone."`
	CompletedThisMonthPayouts int64  `json:"completed_this_month_payouts"`
}

type payoutStatsMonthView struct {
	Timezone string    `json:"timezone" example:"Europe/Berlin" doc:"The workspace's time zone (settings)."`
	Start    Timestamp `json:"start" doc:"The month's first instant, in UTC."`
	End      Timestamp `json:"end" doc:"The next month's first instant (exclusive), in UTC."`
}

type payoutStatsOut struct {
	Currencies      []payoutCurrencyStatsView `json:"currencies" doc:"One entry per currency with payouts pending, processing or completed this month, by code; amounts of different currencies are never added."`
	PendingCount    int64                     `json:"pending_count" doc:"Number of affiliates with a payout pending or processing."`
	PendingRequests int64                     `json:"pending_requests" doc:"Payout requests awaiting approval or rejection."`
	Month           payoutStatsMonthView      `json:"month" doc:"The month completed_this_month covers."`
}

func (s *Server) handlePayoutStats(ctx context.Context, _ *struct{}) (*Out[payoutStatsOut], error) {
	st, err := s.Store.PayoutStats(ctx, principal(ctx).Workspace.ID)
	if err != nil {
		return nil, err
	}
	out := payoutStatsOut{Currencies: make([]payoutCurrencyStatsView, 0, len(st.Currencies)), PendingCount: st.PendingAffiliates,
		PendingRequests: st.PendingRequests, Month: payoutStatsMonthView{Timezone: st.Timezone,
			Start: Timestamp(st.MonthStart), End: Timestamp(st.MonthEnd)}}
	for _, c := range st.Currencies {
		cur := orderCurrency(c.Currency)
		out.Currencies = append(out.Currencies, payoutCurrencyStatsView{Currency: cur.Code,
			PendingAmount: Amount{Minor: c.PendingAmount, Currency: cur}, PendingPayouts: c.PendingPayouts,
			CompletedThisMonth: Amount{Minor: c.CompletedThisMonth, Currency: cur}, CompletedThisMonthPayouts: c.CompletedThisMonthPayouts})
	}
	return ok("Payout statistics retrieved.", out), nil
}

// PayoutExportColumns are the CSV export's columns, in order. Amounts carry
// the currency's exact decimals, as the API renders them; times are RFC 3339
// UTC with microseconds; an absent value is an empty cell.
var PayoutExportColumns = []string{"id", "affiliate_id", "affiliate_name", "affiliate_email", "status", "currency", "amount",
	"method", "run_id", "request_id", "external_reference", "failure_reason", "created_at", "processing_at", "completed_at",
	"failed_at"}

type payoutExportInput struct {
	PayoutFilterParams
	Format    string `query:"format" enum:"csv,paypal" default:"csv" doc:"csv: every column; paypal: the PayPal mass-payment file (see the description)."`
	Direction string `query:"direction" enum:"asc,desc" default:"desc" doc:"Order by created_at, ties by id."`
}

// handlePayoutExport validates everything before the first byte, so a bad
// filter is a 422 envelope; then streams rows as the store reads them. A
// failure mid-stream aborts the connection, so a client sees a failed
// download, never a silently truncated file.
func (s *Server) handlePayoutExport(ctx context.Context, in *payoutExportInput) (*huma.StreamResponse, error) {
	f, err := in.filter()
	if err != nil {
		return nil, err
	}
	paypal := in.Format == "paypal"
	if paypal {
		// A PayPal mass-payment file holds one currency, and paying a
		// completed or failed payout again is never what is meant.
		fe := heldsway.FieldErrors{}
		if f.Currency == "" {
			fe.Add("currency", "The currency field is required when format is paypal: a PayPal mass-payment file holds one currency.")
		}
		switch f.Status {
		case "":
			f.Status = heldsway.PayoutPending
		case heldsway.PayoutPending, heldsway.PayoutProcessing:
		default:
			fe.Add("status", "The status must be pending or processing when format is paypal: the file pays what it lists.")
		}
		if err := fe.Err(); err != nil {
			return nil, err
		}
		if _, err := money.ParseCurrency(f.Currency); err != nil {
			return nil, heldsway.Invalid("currency", "The currency field "+err.Error()+".")
		}
	}
	o := heldsway.ListOptions{Sort: "created_at", Desc: in.Direction != "asc"}
	p := principal(ctx)
	wsID := p.Workspace.ID
	if err := s.Store.CheckPayoutFilter(ctx, wsID, f); err != nil {
		return nil, err
	}
	day := s.Store.Now().UTC().Format("2006-01-02")
	name := fmt.Sprintf("payouts-%s.csv", day)
	if paypal {
		name = fmt.Sprintf("paypal-payouts-%s-%s.csv", strings.ToUpper(f.Currency), day)
	}
	return &huma.StreamResponse{Body: func(hctx huma.Context) {
		hctx.SetHeader("Content-Type", "text/csv; charset=utf-8")
		hctx.SetHeader("Content-Disposition", `attachment; filename="`+name+`"`)
		hctx.SetHeader("Cache-Control", "no-store")
		hctx.SetStatus(http.StatusOK)
		w := csv.NewWriter(hctx.BodyWriter())
		var row []string
		if paypal {
			row = make([]string, 5)
		} else {
			row = make([]string, len(PayoutExportColumns))
			_ = w.Write(PayoutExportColumns)
		}
		n := 0
		err := s.Store.ExportPayouts(hctx.Context(), wsID, f, o, func(po *heldsway.Payout) error {
			if paypal {
				paypalRow(row, po, p.Workspace.Name)
			} else {
				payoutCSVRow(row, po)
			}
			if err := w.Write(row); err != nil {
				return err
			}
			if n++; n%exportFlushEvery == 0 {
				w.Flush()
				if rw, ok := hctx.BodyWriter().(http.ResponseWriter); ok {
					_ = http.NewResponseController(rw).Flush()
				}
			}
			return w.Error()
		})
		if err == nil {
			w.Flush()
			err = w.Error()
		}
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				s.Logger.Error("payout export failed", "request_id", requestID(ctx), "err", err)
			}
			panic(http.ErrAbortHandler)
		}
	}}, nil
}

// payoutCSVRow fills row with p's cells in PayoutExportColumns order.
func payoutCSVRow(row []string, p *heldsway.Payout) {
	cur := orderCurrency(p.Currency)
	opt := func(v *int64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatInt(*v, 10)
	}
	when := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(timestampLayout)
	}
	var name, email string
	if a := p.Affiliate; a != nil {
		name, email = a.Name, a.Email
	}
	copy(row, []string{strconv.FormatInt(p.ID, 10), strconv.FormatInt(p.AffiliateID, 10), csvText(name), csvText(email),
		p.Status, cur.Code, money.Format(p.Amount, cur), p.Method, opt(p.RunID), opt(p.RequestID),
		csvText(p.ExternalReference), csvText(p.FailureReason), when(&p.CreatedAt), when(p.ProcessingAt),
		when(p.CompletedAt), when(p.FailedAt)})
}

// paypalRow fills the five columns of PayPal's mass-payment file: recipient
// e-mail, amount, currency, a unique id (at most 30 characters, no spaces)
// and a note to the recipient.
func paypalRow(row []string, p *heldsway.Payout, workspace string) {
	cur := orderCurrency(p.Currency)
	var email string
	if a := p.Affiliate; a != nil {
		email = a.Email
	}
	copy(row, []string{csvText(email), money.Format(p.Amount, cur), cur.Code, "payout-" + strconv.FormatInt(p.ID, 10),
		csvText(fmt.Sprintf("%s affiliate payout %d", workspace, p.ID))})
}

// payoutAnswer is a state change's payout with its affiliate, as the reads
// show it.
func (s *Server) payoutAnswer(ctx context.Context, msg string, p *heldsway.Payout, err error) (*Out[payoutView], error) {
	if err != nil {
		return nil, err
	}
	if err := s.Store.AttachPayoutAffiliates(ctx, principal(ctx).Workspace.ID, p); err != nil {
		return nil, err
	}
	return ok(msg, viewPayout(p)), nil
}

func (s *Server) handlePayoutProcessing(ctx context.Context, in *payoutIDInput) (*Out[payoutView], error) {
	p, err := s.Store.MarkPayoutProcessing(ctx, principal(ctx).Workspace.ID, in.ID)
	return s.payoutAnswer(ctx, "Payout marked processing.", p, err)
}

type payoutCompleteInput struct {
	ID   int64 `path:"id" minimum:"1" doc:"Payout id."`
	Body *struct {
		ExternalReference string `json:"external_reference,omitempty" maxLength:"255" doc:"The payment's reference at the provider (e.g. a PayPal transaction id); kept on the payout."`
	} `required:"false"`
}

func (s *Server) handlePayoutComplete(ctx context.Context, in *payoutCompleteInput) (*Out[payoutView], error) {
	var ref string
	if in.Body != nil {
		ref = in.Body.ExternalReference
	}
	p, err := s.Store.CompletePayout(ctx, principal(ctx).Workspace.ID, in.ID, ref)
	return s.payoutAnswer(ctx, "Payout completed.", p, err)
}

type payoutFailInput struct {
	ID   int64 `path:"id" minimum:"1" doc:"Payout id."`
	Body *struct {
		Reason string `json:"reason,omitempty" maxLength:"1000" doc:"Why it failed; kept as failure_reason and in the ledger's payout_returned entry."`
	} `required:"false"`
}

func (s *Server) handlePayoutFail(ctx context.Context, in *payoutFailInput) (*Out[payoutView], error) {
	var reason string
	if in.Body != nil {
		reason = in.Body.Reason
	}
	p, err := s.Store.FailPayout(ctx, principal(ctx).Workspace.ID, in.ID, reason)
	return s.payoutAnswer(ctx, "Payout failed; its amount is back in the affiliate's balance.", p, err)
}

type payoutBulkInput struct {
	Body struct {
		IDs []int64 `json:"ids" minItems:"1" maxItems:"100" nullable:"false" doc:"1 to 100 distinct payout ids."`
	}
}

type payoutBulkCompleteInput struct {
	Body struct {
		IDs               []int64 `json:"ids" minItems:"1" maxItems:"100" nullable:"false" doc:"1 to 100 distinct payout ids."`
		ExternalReference string  `json:"external_reference,omitempty" maxLength:"255" doc:"Kept on every payout completed, e.g. the provider's batch id."`
	}
}

type payoutBulkResultView struct {
	ID      int64          `json:"id"`
	Success bool           `json:"success"`
	Payout  *payoutView    `json:"payout,omitempty" doc:"The payout after the action; present on success."`
	Error   *bulkErrorView `json:"error,omitempty" doc:"Why this id failed: NOT_FOUND (unknown or another workspace's) or INVALID_STATUS_TRANSITION."`
}

type payoutBulkOut struct {
	Items     []payoutBulkResultView `json:"items" doc:"One result per id, in request order."`
	Succeeded int                    `json:"succeeded"`
	Failed    int                    `json:"failed"`
}

// checkBulkIDs refuses ids below 1 and duplicates, naming each by position.
func checkBulkIDs(ids []int64) error {
	fe := heldsway.FieldErrors{}
	seen := make(map[int64]bool, len(ids))
	for i, id := range ids {
		field := fmt.Sprintf("ids.%d", i)
		if id < 1 {
			fe.Add(field, fmt.Sprintf("The %s field must be at least 1.", field))
		} else if seen[id] {
			fe.Add(field, fmt.Sprintf("The %s field has a duplicate value (%d).", field, id))
		}
		seen[id] = true
	}
	return fe.Err()
}

func (s *Server) payoutBulk(ctx context.Context, ids []int64, action, ref, msg string) (*Out[payoutBulkOut], error) {
	if err := checkBulkIDs(ids); err != nil {
		return nil, err
	}
	res, err := s.Store.BulkPayoutTransition(ctx, principal(ctx).Workspace.ID, ids, action, ref)
	if err != nil {
		return nil, err
	}
	out := payoutBulkOut{Items: make([]payoutBulkResultView, 0, len(res))}
	for _, r := range res {
		v := payoutBulkResultView{ID: r.ID, Success: r.Err == nil}
		if r.Err != nil {
			if heldsway.ErrorCode(r.Err) == heldsway.EINTERNAL {
				s.Logger.Error("bulk payout", "request_id", requestID(ctx), "payout", r.ID, "err", r.Err)
			}
			v.Error = &bulkErrorView{Code: heldsway.ErrorCode(r.Err), Message: heldsway.ErrorMessage(r.Err)}
			out.Failed++
		} else {
			pv := viewPayout(r.Payout)
			v.Payout = &pv
			out.Succeeded++
		}
		out.Items = append(out.Items, v)
	}
	return ok(msg, out), nil
}

func (s *Server) handlePayoutBulkProcessing(ctx context.Context, in *payoutBulkInput) (*Out[payoutBulkOut], error) {
	return s.payoutBulk(ctx, in.Body.IDs, heldsway.PayoutActionProcessing, "", "Bulk processing done.")
}

func (s *Server) handlePayoutBulkComplete(ctx context.Context, in *payoutBulkCompleteInput) (*Out[payoutBulkOut], error) {
	return s.payoutBulk(ctx, in.Body.IDs, heldsway.PayoutActionComplete, in.Body.ExternalReference, "Bulk completion done.")
}

// payoutRequestView is an affiliate's request for an early payout.
type payoutRequestView struct {
	ID          int64                `json:"id"`
	AffiliateID int64                `json:"affiliate_id"`
	Affiliate   *payoutAffiliateView `json:"affiliate"`
	Currency    string               `json:"currency" example:"USD"`
	Amount      Amount               `json:"amount"`
	Status      string               `json:"status" enum:"pending,approved,rejected" doc:"pending until approved (which creates the payout) or rejected."`
	PayoutID    *int64               `json:"payout_id" nullable:"true" doc:"The payout its approval created."`
	Note        *string              `json:"note" nullable:"true" doc:"The affiliate's note."`
	Reason      *string              `json:"reason" nullable:"true" doc:"Why it was rejected."`
	CreatedAt   Timestamp            `json:"created_at" doc:"When it was requested."`
	DecidedAt   *Timestamp           `json:"decided_at" nullable:"true" doc:"When it was approved or rejected."`
	UpdatedAt   Timestamp            `json:"updated_at"`
}

func viewPayoutRequest(r *heldsway.PayoutRequest) payoutRequestView {
	return payoutRequestView{ID: r.ID, AffiliateID: r.AffiliateID, Affiliate: viewPayoutAffiliate(r.Affiliate),
		Currency: r.Currency, Amount: Amount{Minor: r.Amount, Currency: orderCurrency(r.Currency)}, Status: r.Status,
		PayoutID: r.PayoutID, Note: strOrNil(r.Note), Reason: strOrNil(r.Reason), CreatedAt: Timestamp(r.CreatedAt),
		DecidedAt: tsPtr(r.DecidedAt), UpdatedAt: Timestamp(r.UpdatedAt)}
}

type payoutRequestCreateInput struct {
	ID   int64 `path:"id" minimum:"1" doc:"Affiliate id."`
	Body struct {
		Amount   Decimal `json:"amount" exclusiveMinimum:"0" doc:"Amount requested, in the currency's units with at most its decimals; > 0 and at most the available balance less the affiliate's pending requests in the currency."`
		Currency string  `json:"currency" minLength:"3" maxLength:"3" doc:"ISO 4217 code." example:"USD"`
		Note     string  `json:"note,omitempty" maxLength:"1000" doc:"The affiliate's note to the business."`
	}
}

func (s *Server) handlePayoutRequestCreate(ctx context.Context, in *payoutRequestCreateInput) (*Out[payoutRequestView], error) {
	m, cur, err := moneyIn(in.Body.Amount, in.Body.Currency)
	if err != nil {
		return nil, err
	}
	r, err := s.Store.CreatePayoutRequest(ctx, principal(ctx).Workspace.ID, in.ID,
		heldsway.PayoutRequestInput{Amount: m, Currency: cur.Code, Note: in.Body.Note})
	if err != nil {
		return nil, err
	}
	return ok("Payout request created.", viewPayoutRequest(r)), nil
}

type payoutRequestListInput struct {
	ListParams
	Status      string `query:"status" enum:"pending,approved,rejected" doc:"Only requests with this status."`
	AffiliateID int64  `query:"affiliate_id" minimum:"1" doc:"Only this affiliate's requests; must be one of this workspace's affiliates (422 otherwise)."`
	Sort        string `query:"sort" enum:"created_at" default:"created_at" doc:"Sort field; ties are broken by id."`
}

func (s *Server) handlePayoutRequestList(ctx context.Context, in *payoutRequestListInput) (*Out[Page[payoutRequestView]], error) {
	o, err := in.options(in.Sort)
	if err != nil {
		return nil, err
	}
	res, err := s.Store.ListPayoutRequests(ctx, principal(ctx).Workspace.ID,
		heldsway.PayoutRequestFilter{Status: in.Status, AffiliateID: in.AffiliateID}, o)
	if err != nil {
		return nil, err
	}
	return ok("OK", pageOut(res, in.ListParams, o, viewPayoutRequest)), nil
}

type payoutRequestIDInput struct {
	ID int64 `path:"id" minimum:"1" doc:"Payout request id."`
}

func (s *Server) handlePayoutRequestApprove(ctx context.Context, in *payoutRequestIDInput) (*Out[payoutView], error) {
	p, err := s.Store.CreatePayoutForRequest(ctx, principal(ctx).Workspace.ID, in.ID)
	return s.payoutAnswer(ctx, "Payout request approved; payout created.", p, err)
}

type payoutRequestRejectInput struct {
	ID   int64 `path:"id" minimum:"1" doc:"Payout request id."`
	Body *struct {
		Reason string `json:"reason,omitempty" maxLength:"1000" doc:"Why; shown on the request and kept in the audit entry."`
	} `required:"false"`
}

func (s *Server) handlePayoutRequestReject(ctx context.Context, in *payoutRequestRejectInput) (*Out[payoutRequestView], error) {
	var reason string
	if in.Body != nil {
		reason = in.Body.Reason
	}
	r, err := s.Store.RejectPayoutRequest(ctx, principal(ctx).Workspace.ID, in.ID, reason)
	if err != nil {
		return nil, err
	}
	return ok("Payout request rejected.", viewPayoutRequest(r)), nil
}
