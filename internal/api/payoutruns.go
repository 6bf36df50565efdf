package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// Payout runs: POST /v1/payouts/run turns every active affiliate's available
// balance per currency into one pending payout when it reaches the payout
// minimum; the scheduler does the same for each ended period.

type payoutRunTotalView struct {
	Currency string `json:"currency" example:"USD"`
	Payouts  int    `json:"payouts" doc:"Payouts created in this currency."`
	Amount   Amount `json:"amount" doc:"Their sum."`
}

type payoutRunView struct {
	ID             int64                `json:"id"`
	PeriodKey      string               `json:"period_key" example:"monthly:2026-11" doc:"The period the run settles: weekly:YYYY-Www, biweekly:YYYY-Www (the pair's even week), monthly:YYYY-MM, or manual:<random> for a run started without one. Unique per workspace: a period is paid once."`
	Status         string               `json:"status" enum:"running,completed"`
	Currency       *string              `json:"currency" nullable:"true" doc:"The only currency the run paid; null for every currency."`
	PayoutsCreated int                  `json:"payouts_created"`
	CarriedForward int                  `json:"carried_forward" doc:"Positive balances left below the payout minimum for a later run."`
	Totals         []payoutRunTotalView `json:"totals" doc:"Per currency, by code."`
	StartedAt      Timestamp            `json:"started_at"`
	CompletedAt    *Timestamp           `json:"completed_at" nullable:"true"`
}

func viewPayoutRun(r *heldsway.PayoutRun) payoutRunView {
	v := payoutRunView{ID: r.ID, PeriodKey: r.PeriodKey, Status: r.Status, PayoutsCreated: r.PayoutsCreated,
		CarriedForward: r.CarriedForward, Totals: []payoutRunTotalView{}, StartedAt: Timestamp(r.StartedAt),
		CompletedAt: tsPtr(r.CompletedAt)}
	if r.Currency != "" {
		v.Currency = ptr(r.Currency)
	}
	for _, t := range r.Totals {
		v.Totals = append(v.Totals, payoutRunTotalView{Currency: t.Currency, Payouts: t.Payouts,
			Amount: Amount{Minor: t.Amount, Currency: orderCurrency(t.Currency)}})
	}
	return v
}

type payoutRunInput struct {
	Body *struct {
		PeriodKey string `json:"period_key,omitempty" maxLength:"64" doc:"The period to settle, e.g. monthly:2026-11; omitted: a manual run of its own. A period that already ran answers 409 CONFLICT with its run_id."`
		Currency  string `json:"currency,omitempty" maxLength:"3" doc:"Pay only balances in this ISO 4217 currency."`
	} `required:"false"`
}

func (s *Server) handlePayoutRun(ctx context.Context, in *payoutRunInput) (*Out[payoutRunView], error) {
	var run heldsway.PayoutRunInput
	if in.Body != nil {
		run = heldsway.PayoutRunInput{PeriodKey: in.Body.PeriodKey, Currency: in.Body.Currency}
	}
	// A run finishes even if the client goes away: cut off, a manual run
	// would stay claimed under a key the client never learnt.
	r, err := s.Store.RunPayouts(context.WithoutCancel(ctx), principal(ctx).Workspace.ID, run)
	if err != nil {
		return nil, err
	}
	return ok("Payout run completed.", viewPayoutRun(r)), nil
}

type payoutRunGetInput struct {
	ID int64 `path:"id" minimum:"1" doc:"Payout run id."`
}

func (s *Server) handlePayoutRunGet(ctx context.Context, in *payoutRunGetInput) (*Out[payoutRunView], error) {
	r, err := s.Store.ReadPayoutRun(ctx, principal(ctx).Workspace.ID, in.ID)
	if err != nil {
		return nil, err
	}
	return ok("OK", viewPayoutRun(r)), nil
}

// routesPayoutRuns registers the payout run endpoints, under the Payouts tag
// that routesPayouts declares.
func (s *Server) routesPayoutRuns() {
	tags := []string{"Payouts"}
	register(s, huma.Operation{OperationID: "runPayouts", Method: http.MethodPost, Path: "/v1/payouts/run", Tags: tags,
		Summary: "Run payouts: one pending payout per affiliate and currency whose available balance reaches the minimum",
		Description: "Groups each active affiliate's available balance per currency into one pending payout when it reaches " +
			"the payout minimum (GET /v1/settings/payouts; the minimum is in the settings' currency, a balance in another " +
			"currency is paid when positive); smaller balances are carried forward. Each payout settles the affiliate's " +
			"approved commissions it covers in full, oldest first. A period runs once, even when several runs start at " +
			"the same moment on several servers: its second run answers 409 CONFLICT with details.run_id. Suspended and " +
			"terminated affiliates' balances are on hold. The scheduler runs each ended weekly, biweekly or monthly " +
			"period by itself; manual frequency runs only through this endpoint.",
		DefaultStatus: http.StatusCreated, Errors: []int{http.StatusConflict}}, heldsway.ScopePayoutsWrite, s.handlePayoutRun)
	register(s, huma.Operation{OperationID: "getPayoutRun", Method: http.MethodGet, Path: "/v1/payout-runs/{id}", Tags: tags,
		Summary: "A payout run with its totals", Errors: []int{http.StatusNotFound}}, heldsway.ScopePayoutsRead, s.handlePayoutRunGet)
}
