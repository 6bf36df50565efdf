package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/heldsway/heldsway/internal/commission"
	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

// Recording conversions (POST /v1/conversions): attribution, the commission
// breakdown, the customer binding, the order with its items and commissions,
// the audit entry and the events, all in one transaction.
//
// Attribution tries the evidence in this order and takes the first that holds:
//
//  1. click id: a click of this workspace (an unknown id, or another
//     workspace's, is no evidence), recorded within the program's cookie window
//     before occurred_at (up to heldsway.ConversionFutureSkew after it, for clock
//     skew). The program's attribution_model then picks among the clicks of the
//     same visitor (the hs_vid of that click) in the same program and window:
//     first_click the earliest, last_click the latest. Clicks whose affiliate
//     cannot be credited do not take part.
//  2. coupon code (case-insensitive): the coupon is active and occurred_at lies
//     in its [starts_at, ends_at) window. Its minimum order amount is about the
//     discount applying, which the merchant already decided, so it is not checked.
//  3. referral code: an affiliate of this workspace.
//  4. the customer's binding (by e-mail, else external id) from an earlier
//     order, when the bound affiliate's program is recurring lifetime, or
//     recurring months and occurred_at lies within recurring_months calendar
//     months of the binding (not before it).
//
// Evidence holds only for an active affiliate in an active program: inactive,
// suspended and terminated affiliates never get new attributions, and a paused
// or archived program attributes nothing (as the redirect records no click for
// it). Evidence that does not hold is ignored and the next is tried; the
// reported evidence is kept in the audit entry. With none, the order is stored
// unattributed ("none") with zero commission.
//
// Duplicates: orders has UNIQUE (workspace_id, order_id). The insert is
// ON CONFLICT DO NOTHING, so a concurrent duplicate waits for the first
// transaction (PostgreSQL) or for the single writer (SQLite), inserts nothing,
// and the transaction rolls back with a CONFLICT naming the existing order: no
// second order, item, commission, audit entry or event. A unique violation
// that still surfaces (an engine that does not infer the conflict target) is
// turned into the same CONFLICT after the rollback.

// convProgramCols and convAffiliateCols read an affiliate with what the
// conversion needs of its program, in one query.
const convAffiliateCols = `a.id, a.name, a.email, a.referral_code, a.status, a.commission_rate, a.parent_affiliate_id,
	p.id, p.currency, p.commission_type, p.commission_value, p.commission_base, p.recurring, p.recurring_months,
	p.cookie_days, p.attribution_model, p.tier_rate, p.status, p.auto_approve_enabled, p.auto_approve_delay_days`

const convAffiliateJoin = ` JOIN programs p ON p.workspace_id = a.workspace_id AND p.id = a.program_id`

type convProgram struct {
	id          int64
	currency    string
	typ, base   string
	value       *int64
	recurring   string
	months      *int64
	cookieDays  int64
	model       string
	tierRate    *int64
	status      string
	autoApprove bool
	autoDelay   int64
}

type convAffiliate struct {
	id                        int64
	name, email, code, status string
	rate, parentID            *int64
	prog                      convProgram
}

// attributable reports whether the affiliate may be credited with a new order.
func (a *convAffiliate) attributable() bool {
	return a.status == heldsway.AffiliateActive && a.prog.status == heldsway.ProgramActive
}

// scanConvAffiliate scans convAffiliateCols after any leading columns.
func scanConvAffiliate(sc scanner, lead ...any) (*convAffiliate, error) {
	var (
		a                                       convAffiliate
		rate, parent, value, months, tier, days sql.NullInt64
	)
	p := &a.prog
	dest := append(lead, &a.id, &a.name, &a.email, &a.code, &a.status, &rate, &parent,
		&p.id, &p.currency, &p.typ, &value, &p.base, &p.recurring, &months,
		&days, &p.model, &tier, &p.status, &p.autoApprove, &p.autoDelay)
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	a.rate, a.parentID, p.value, p.months, p.tierRate = fromNullInt(rate), fromNullInt(parent), fromNullInt(value),
		fromNullInt(months), fromNullInt(tier)
	p.cookieDays = days.Int64
	return &a, nil
}

// attribution is the evidence that credited an order.
type attribution struct {
	method string
	aff    *convAffiliate // nil: unattributed
	linkID *int64
	// rulesLink is linkID when that link has active commission rules (else
	// nil): the rules are read only then.
	rulesLink *int64
	clickID   string
	couponID  *int64
}

// convCustomer is a customers row as attribution and binding need it.
type convCustomer struct {
	id          int64
	affiliateID *int64
	boundAt     *time.Time
}

// CreateConversion records a reported order. See the comment at the top of
// this file for attribution and duplicates. Errors: EVALIDATION for bad input
// or an attributed order in a currency other than its program's; ECONFLICT
// for an order_id the workspace already has (details order_id and
// existing_id).
func (s *Store) CreateConversion(ctx context.Context, wsID int64, in heldsway.ConversionInput) (*heldsway.Order, error) {
	now := s.Now()
	in.Normalize(now)
	if err := in.Validate(now); err != nil {
		return nil, err
	}
	o, err := s.recordConversion(ctx, wsID, &in, now)
	if err != nil && isUniqueViolation(err) {
		var id int64
		if s.r.QueryRowContext(ctx, `SELECT id FROM orders WHERE workspace_id = $1 AND order_id = $2`,
			wsID, in.OrderID).Scan(&id) == nil {
			return nil, heldsway.DuplicateOrder(in.OrderID, id)
		}
	}
	if err != nil {
		return nil, err
	}
	return o, nil
}

// The conversion's statements.
const (
	// The picked click when it is not the one named.
	qConvPicked = `SELECT c.click_id, c.link_id, c.affiliate_id, ` + linkHasRules + ` FROM clicks c WHERE c.workspace_id = $1 AND c.id = $2`
	// linkHasRules tells whether click c's link has an active commission rule
	// (one probe of link_rules_link), so the rules are read only then: most
	// links have none, and a statement of its own per conversion cost the
	// writer about 4% of its throughput.
	linkHasRules = `EXISTS (SELECT 1 FROM link_rules lr WHERE lr.workspace_id = c.workspace_id AND lr.link_id = c.link_id AND lr.is_active)`
	qConvCoupon  = `SELECT c.id, c.is_active, c.starts_at, c.ends_at, ` + convAffiliateCols + `
		FROM coupons c JOIN affiliates a ON a.workspace_id = c.workspace_id AND a.id = c.affiliate_id` + convAffiliateJoin + `
		WHERE c.workspace_id = $1 AND c.code_key = $2`
	qConvReferral = `SELECT ` + convAffiliateCols + ` FROM affiliates a` + convAffiliateJoin + `
		WHERE a.workspace_id = $1 AND a.referral_code = $2`
	qConvAffiliate = `SELECT ` + convAffiliateCols + ` FROM affiliates a` + convAffiliateJoin + `
		WHERE a.workspace_id = $1 AND a.id = $2`
	qConvParent = `SELECT email, status FROM affiliates WHERE workspace_id = $1 AND id = $2`
	qConvTiers  = `SELECT t.min_amount, t.max_amount, t.rate FROM commission_tiers t
		JOIN programs p ON p.workspace_id = t.workspace_id AND p.is_default AND p.currency = $2
		WHERE t.workspace_id = $1 ORDER BY t.min_amount, t.id`
	qConvRenewal = `SELECT MIN(converted_at) FROM orders
		WHERE workspace_id = $1 AND subscription_id = $2 AND converted_at <= $3`
	qConvDefaultAuto = `SELECT auto_approve_enabled, auto_approve_delay_days FROM programs
		WHERE workspace_id = $1 AND is_default`
	qConvCustomerCols  = `SELECT id, affiliate_id, bound_at FROM customers WHERE workspace_id = $1 AND `
	qConvCustomerBoth  = qConvCustomerCols + `(email = $2 OR external_id = $3) ORDER BY CASE WHEN email = $2 THEN 0 ELSE 1 END LIMIT 1`
	qConvCustomerEmail = qConvCustomerCols + `email = $2`
	qConvCustomerID    = qConvCustomerCols + `external_id = $2`
	// DO NOTHING on either unique index: the customer exists (or a concurrent
	// order of the same new customer inserted it first); it is found instead.
	qConvCustomerInsert = `INSERT INTO customers (workspace_id, email, external_id, name, affiliate_id,
		program_id, bound_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
		ON CONFLICT DO NOTHING RETURNING id`
	qConvCustomerBind = `UPDATE customers SET affiliate_id = $1, program_id = $2, bound_at = $3, updated_at = $4
		WHERE workspace_id = $5 AND id = $6 AND affiliate_id IS NULL`
	qConvOrderInsert = `INSERT INTO orders (workspace_id, order_id, status, currency, total, subtotal,
		discount, tax, commission_amount, commission_rate, affiliate_id, program_id, link_id, click_id, coupon_id,
		coupon_code, customer_id, customer_email, customer_name, subscription_id, attribution, flags, metadata,
		converted_at, auto_approve_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23,
		$24, $25, $26, $26)
		ON CONFLICT (workspace_id, order_id) DO NOTHING RETURNING id`
	qConvOrderExisting = `SELECT id FROM orders WHERE workspace_id = $1 AND order_id = $2`
	// The audit entry and events, as record.go writes them, in a batch's rows (convRows).
	qConvAuditHead = `INSERT INTO audit_log
		(workspace_id, actor_type, actor_id, action, resource_type, resource_id, changes, request_id, ip, created_at) VALUES `
	qConvItemHead         = `INSERT INTO order_items (workspace_id, order_id, product_id, name, category, quantity, price) VALUES `
	qConvCommissionInsert = `INSERT INTO commissions (workspace_id, order_id, affiliate_id, tier, currency,
		amount, rate, rule, base_amount, explanation, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING id`
)

// The conversion's click query: the click, its affiliate and program, and the
// click the program's attribution_model picks among the same visitor's clicks
// in the same program and window (first_click: the earliest; last_click: the
// latest), counting only clicks whose affiliate is active: one statement. $3
// is occurred_at, $4 occurred_at plus the allowed clock skew; the window opens
// cookie_days before occurred_at. One subquery per model, each in the order
// of clicks_visitor (its rows end with the id), so the engine stops at the
// first click that counts instead of sorting them all.
//
// SQLite's names the visitor index: without planner statistics (HeldSway
// never analyses a database) it walked clicks_created instead, every click of
// the window for each conversion, 1.7 ms per conversion at 10,000 clicks and
// growing with them.
var (
	qConvClick       = convClickQuery(`clicks c2`)
	qConvClickSQLite = convClickQuery(`clicks c2 INDEXED BY clicks_visitor`)
)

// convClickQuery is the click query reading the visitor's clicks from
// visitorClicks (the table, aliased c2).
func convClickQuery(visitorClicks string) string {
	visitor := `SELECT c2.id FROM ` + visitorClicks + ` JOIN affiliates a2 ON a2.workspace_id = c2.workspace_id AND a2.id = c2.affiliate_id
			WHERE c2.workspace_id = c.workspace_id AND c2.visitor_id = c.visitor_id AND c2.program_id = c.program_id
			AND c2.created_at >= $3 - p.cookie_days * 86400000000 AND c2.created_at <= $4 AND a2.status = 'active'`
	return `SELECT c.id, c.link_id, c.program_id, c.visitor_id, c.created_at,
		CASE WHEN p.attribution_model = 'first_click'
			THEN (` + visitor + ` ORDER BY c2.created_at, c2.id LIMIT 1)
			ELSE (` + visitor + ` ORDER BY c2.created_at DESC, c2.id DESC LIMIT 1) END, ` + linkHasRules + `, ` + convAffiliateCols + `
		FROM clicks c JOIN affiliates a ON a.workspace_id = c.workspace_id AND a.id = c.affiliate_id` + convAffiliateJoin + `
		WHERE c.workspace_id = $1 AND c.click_id = $2`
}

const qConvEventsHead = `INSERT INTO events (workspace_id, type, resource_type, resource_id, data, created_at) VALUES `

// convQ runs a batch's statements in one transaction, on a connection of the
// write pool inside the BEGIN of connTx. On SQLite the texts are compiled once
// per connection by its statement cache (cachedConn); pgx caches prepared
// statements itself.
type convQ struct {
	ctx context.Context
	db  sqlQuerier
	// sqlite runs SQLite's texts: the click attribution's (qConvClickSQLite)
	// and the batch rows' (convRowStmts).
	sqlite bool
	rollup *rollup // the transaction's rollup changes, flushed by its owner before the commit
	// batchRows collects the order items, audit entries and events for the
	// batch's writer to write in multi-row statements before the commit
	// (convRows.write).
	batchRows *convRows
}

// sqlQuerier is what a transaction's statements run on: a *sql.Tx, or a
// *sql.Conn inside a transaction it began itself.
type sqlQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (q *convQ) row(query string, args ...any) *sql.Row {
	return q.db.QueryRowContext(q.ctx, query, args...)
}

func (q *convQ) rows(query string, args ...any) (*sql.Rows, error) {
	return q.db.QueryContext(q.ctx, query, args...)
}

func (q *convQ) exec(query string, args ...any) (sql.Result, error) {
	return q.db.ExecContext(q.ctx, query, args...)
}

// createConversion records one conversion in q's transaction.
//
// Errors before the first write are the conversion's own (validation,
// duplicate, currency). An error once writing has begun is wrapped in
// convWriteError: the transaction holds part of the conversion and must not
// commit; the group-commit writer then retries each conversion of the batch
// alone.
func (s *Store) createConversion(q *convQ, wsID int64, in *heldsway.ConversionInput, now time.Time) (*heldsway.Order, error) {
	var existing int64
	err := q.row(qConvOrderExisting, wsID, in.OrderID).Scan(&existing)
	if err == nil {
		return nil, heldsway.DuplicateOrder(in.OrderID, existing)
	} else if !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	att, cust, err := s.attribute(q, wsID, in)
	if err != nil {
		return nil, err
	}
	cur := money.MustCurrency(in.Currency) // validated
	calc := commission.Input{Order: commission.Order{Currency: cur, Total: in.Total, Subtotal: in.Subtotal,
		Discount: in.Discount, Tax: in.Tax, CustomerEmail: in.Customer.Email}}
	o := &heldsway.Order{WorkspaceID: wsID, OrderID: in.OrderID, Status: heldsway.OrderPending, Currency: cur.Code,
		Total: in.Total, Subtotal: in.Subtotal, Discount: in.Discount, Tax: in.Tax, LinkID: att.linkID,
		ClickID: att.clickID, CouponID: att.couponID, CouponCode: in.CouponCode, Customer: in.Customer,
		SubscriptionID: in.SubscriptionID, Attribution: att.method, Flags: []string{}, Metadata: in.Metadata,
		ConvertedAt: in.OccurredAt, CreatedAt: now, UpdatedAt: now, Items: in.LineItems,
		Commissions: []*heldsway.Commission{}}
	if o.Items == nil {
		o.Items = []heldsway.LineItem{}
	}
	var autoApprove bool
	var autoDelay int64
	if a := att.aff; a != nil {
		if a.prog.currency != cur.Code {
			return nil, heldsway.ErrCurrencyMismatch(cur.Code, a.prog.currency)
		}
		if calc, err = commissionInput(q, wsID, in, a, att.rulesLink, calc); err != nil {
			return nil, err
		}
		o.Affiliate = &heldsway.OrderAffiliate{ID: a.id, Name: a.name, ReferralCode: a.code}
		o.ProgramID = &a.prog.id
		autoApprove, autoDelay = a.prog.autoApprove, a.prog.autoDelay
	} else {
		// Unattributed orders follow the workspace settings (the default
		// program), as the auto-approval sweep reads them for orders without one.
		err := q.row(qConvDefaultAuto, wsID).Scan(&autoApprove, &autoDelay)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
	}
	res, err := commission.Calculate(calc)
	if errors.Is(err, commission.ErrCurrencyMismatch) {
		return nil, heldsway.ErrCurrencyMismatch(cur.Code, att.aff.prog.currency)
	} else if err != nil {
		return nil, err
	}
	selfReferral := false
	for _, f := range res.Flags {
		o.Flags = append(o.Flags, string(f))
		selfReferral = selfReferral || f == commission.FlagSelfReferral
	}
	o.CommissionAmount = res.Payable()
	if len(res.Lines) > 0 {
		o.CommissionRate = res.Lines[0].RateBP()
	}
	// A self-referral is held for a person to look at: never auto-approved.
	if autoApprove && !selfReferral {
		t := o.ConvertedAt.Add(time.Duration(autoDelay) * 24 * time.Hour)
		o.AutoApproveAt = &t
	}

	if err := s.writeConversion(q, o, in, cust, att, res, selfReferral); err != nil {
		return nil, convWriteError{err}
	}
	if err := q.rollup.orderChange(nil, o); err != nil {
		return nil, convWriteError{err}
	}
	return o, nil
}

// convWriteError is an error raised after a conversion began writing.
type convWriteError struct{ err error }

func (e convWriteError) Error() string { return e.err.Error() }
func (e convWriteError) Unwrap() error { return e.err }

// writeConversion writes the computed order: customer, order, items,
// commissions, audit entry, events.
func (s *Store) writeConversion(q *convQ, o *heldsway.Order, in *heldsway.ConversionInput, cust *convCustomer, att attribution, res commission.Result, selfReferral bool) error {
	var err error
	if o.CustomerID, err = s.bindCustomer(q, o.WorkspaceID, in, cust, att, selfReferral); err != nil {
		return err
	}
	if err := insertOrder(q, o); err != nil {
		return err
	}
	insertOrderItems(q, o)
	for _, l := range res.Lines {
		c := &heldsway.Commission{WorkspaceID: o.WorkspaceID, OrderID: o.ID, OrderRef: o.OrderID, AffiliateID: l.AffiliateID,
			Tier: l.Tier, Currency: o.Currency, Amount: l.Amount, Rate: l.RateBP(), Rule: string(l.Rule),
			BaseAmount: l.BaseAmount, Explanation: l.Explanation, Status: heldsway.CommissionPending,
			CreatedAt: o.CreatedAt, UpdatedAt: o.CreatedAt}
		// A flagged line (self-referral, a renewal the program does not pay)
		// is kept for the record but never paid.
		if !l.Payable() {
			c.Status = heldsway.CommissionRejected
		}
		if err := q.row(qConvCommissionInsert, o.WorkspaceID, o.ID, c.AffiliateID, c.Tier, c.Currency, c.Amount, nullInt(c.Rate),
			c.Rule, c.BaseAmount, c.Explanation, c.Status, ts(o.CreatedAt)).Scan(&c.ID); err != nil {
			return err
		}
		o.Commissions = append(o.Commissions, c)
	}
	return s.recordConversionChange(q, o, in)
}

// recordConversionChange writes the audit entry (conversion.create) and the
// events (conversion.created, one commission.accrued per line) with the
// columns s.audit and s.event write, in two prepared statements (on SQLite as
// rows of the batch's, convRows): this runs in the single writer on SQLite,
// so its cost is the throughput's. The order's
// snapshot is marshalled once: the event data, the commission events' data
// (its "commissions" items) and the audit changes ({"field": {"before": null,
// "after": …}} for a creation, as diff gives, the values kept as marshalled so
// amounts stay exact) are all cut from those bytes.
func (s *Store) recordConversionChange(q *convQ, o *heldsway.Order, in *heldsway.ConversionInput) error {
	data, err := json.Marshal(snapOrder(o))
	if err != nil {
		return err
	}
	ev, err := json.Marshal(conversionEvidence{snapNullStr(in.ClickID), snapNullStr(in.CouponCode), snapNullStr(in.ReferralCode)})
	if err != nil {
		return err
	}
	changes, lines, err := creationChanges(data, ev, len(o.Commissions))
	if err != nil {
		return err
	}

	a := heldsway.ActorFrom(q.ctx)
	var actorID sql.NullInt64
	if a.ID != 0 {
		actorID = sql.NullInt64{Int64: a.ID, Valid: true}
	}
	at := ts(s.Now())
	r := q.batchRows
	r.audit = append(r.audit, o.WorkspaceID, a.Type, actorID, "conversion.create", "order", nullID(o.ID), string(changes),
		nullStr(a.RequestID), nullStr(a.IP), at)
	r.events = append(r.events, o.WorkspaceID, "conversion.created", "order", o.ID, string(data), at)
	for i, c := range o.Commissions {
		r.events = append(r.events, o.WorkspaceID, "commission.accrued", "commission", c.ID, string(lines[i]), at)
	}
	return nil
}

// creationChanges cuts the audit changes of an order's creation from its
// marshalled snapshot: every field as {"before":null,"after":value}, with
// "evidence" added, keys sorted (as diff's map marshals), values as marshalled.
// It also returns the snapshot's n commission items.
func creationChanges(data, evidence []byte, n int) (changes []byte, lines [][]byte, err error) {
	fields, err := jsonMembers(data, make([]jsonMember, 0, 32))
	if err != nil {
		return nil, nil, fmt.Errorf("conversion snapshot: %w", err)
	}
	for _, f := range fields {
		if f.key == "commissions" {
			lines, err = jsonElements(f.value, make([][]byte, 0, n))
		}
	}
	if err != nil || len(lines) != n {
		return nil, nil, fmt.Errorf("conversion snapshot: commissions %d of %d: %w", len(lines), n, err)
	}
	fields = append(fields, jsonMember{key: "evidence", value: evidence})
	slices.SortFunc(fields, func(a, b jsonMember) int { return strings.Compare(a.key, b.key) })
	changes = make([]byte, 0, 2*len(data)+64)
	changes = append(changes, '{')
	for i, f := range fields {
		if i > 0 {
			changes = append(changes, ',')
		}
		changes = strconv.AppendQuote(changes, f.key) // snapshot keys are plain ASCII
		changes = append(changes, `:{"before":null,"after":`...)
		changes = append(changes, f.value...)
		changes = append(changes, '}')
	}
	return append(changes, '}'), lines, nil
}

// conversionEvidence is the attribution evidence as reported, for the audit
// entry: what was claimed, whether or not it held.
type conversionEvidence struct {
	ClickID      *string `json:"click_id"`
	CouponCode   *string `json:"coupon_code"`
	ReferralCode *string `json:"referral_code"`
}

// attribute finds the affiliate an order is credited to. The customer is
// looked up only when the other evidence fails (bindCustomer otherwise tries
// to insert it first); the customer found, if any, is returned.
func (s *Store) attribute(q *convQ, wsID int64, in *heldsway.ConversionInput) (attribution, *convCustomer, error) {
	at := in.OccurredAt
	if in.ClickID != "" {
		if a, ok, err := attributeClick(q, wsID, in.ClickID, at); err != nil || ok {
			return a, nil, err
		}
	}
	if in.CouponCode != "" {
		var (
			id           int64
			active       bool
			starts, ends sql.NullInt64
		)
		a, err := scanConvAffiliate(q.row(qConvCoupon, wsID, heldsway.CouponKey(in.CouponCode)), &id, &active, &starts, &ends)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return attribution{}, nil, err
		}
		if err == nil && active && a.attributable() && (!starts.Valid || ts(at) >= starts.Int64) && (!ends.Valid || ts(at) < ends.Int64) {
			return attribution{method: heldsway.AttributionCoupon, aff: a, couponID: &id}, nil, nil
		}
	}
	if in.ReferralCode != "" {
		a, err := scanConvAffiliate(q.row(qConvReferral, wsID, in.ReferralCode))
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return attribution{}, nil, err
		}
		if err == nil && a.attributable() {
			return attribution{method: heldsway.AttributionReferralCode, aff: a}, nil, nil
		}
	}
	cust, err := findConvCustomer(q, wsID, in.Customer)
	if err != nil {
		return attribution{}, nil, err
	}
	if cust != nil && cust.affiliateID != nil && cust.boundAt != nil && !at.Before(*cust.boundAt) {
		a, err := readConvAffiliate(q, wsID, *cust.affiliateID)
		if err != nil {
			return attribution{}, cust, err
		}
		if a != nil && a.attributable() && bindingHolds(a.prog, *cust.boundAt, at) {
			return attribution{method: heldsway.AttributionCustomer, aff: a}, cust, nil
		}
	}
	return attribution{method: heldsway.AttributionNone}, cust, nil
}

// bindingHolds reports whether a customer bound at boundAt still earns the
// affiliate commissions at t under its program's recurring policy.
func bindingHolds(p convProgram, boundAt, t time.Time) bool {
	switch p.recurring {
	case heldsway.RecurringLifetime:
		return true
	case heldsway.RecurringMonths:
		return p.months != nil && int64(commission.MonthsSince(boundAt, t)) < *p.months
	}
	return false
}

// readConvAffiliate reads an affiliate with its program; nil if there is none.
func readConvAffiliate(q *convQ, wsID, id int64) (*convAffiliate, error) {
	a, err := scanConvAffiliate(q.row(qConvAffiliate, wsID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return a, err
}

// attributeClick applies the click evidence: ok is false when it does not hold.
func attributeClick(q *convQ, wsID int64, clickID string, at time.Time) (attribution, bool, error) {
	var (
		id, linkID, progID, created int64
		visitor                     string
		picked                      sql.NullInt64
		rules                       bool
	)
	// The window is the cookie's: a click older than cookie_days before the
	// order does not count. A click may follow occurred_at by the clock skew
	// the order's own time is allowed.
	to := ts(at.Add(heldsway.ConversionFutureSkew))
	text := qConvClick
	if q.sqlite {
		text = qConvClickSQLite
	}
	a, err := scanConvAffiliate(q.row(text, wsID, clickID, ts(at), to), &id, &linkID, &progID, &visitor, &created, &picked, &rules)
	if errors.Is(err, sql.ErrNoRows) {
		return attribution{}, false, nil
	} else if err != nil {
		return attribution{}, false, err
	}
	from := ts(at.Add(-time.Duration(a.prog.cookieDays) * 24 * time.Hour))
	if created < from || created > to || !picked.Valid {
		return attribution{}, false, nil // outside the window, or no click of the visitor can be credited
	}
	if picked.Int64 != id {
		var affID int64
		if err := q.row(qConvPicked, wsID, picked.Int64).Scan(&clickID, &linkID, &affID, &rules); err != nil {
			return attribution{}, false, err
		}
		if affID != a.id {
			if a, err = readConvAffiliate(q, wsID, affID); err != nil || a == nil {
				return attribution{}, false, err
			}
		}
	}
	if !a.attributable() {
		return attribution{}, false, nil
	}
	att := attribution{method: heldsway.AttributionClick, aff: a, clickID: clickID}
	if linkID != 0 { // 0: a ?ref= landing the storefront reported, through no link
		att.linkID = &linkID
		if rules {
			att.rulesLink = att.linkID
		}
	}
	return att, true, nil
}

// commissionInput completes the engine's input for an attributed order: the
// affiliate and its active parent, the program, the workspace tiers when they
// can apply, the platform defaults, and whether the order renews a
// subscription, and the rule of the link the order came through (linkID: nil
// unless attributed by click through a link with active rules) that applies
// to it, if any.
func commissionInput(q *convQ, wsID int64, in *heldsway.ConversionInput, a *convAffiliate, linkID *int64, calc commission.Input) (commission.Input, error) {
	cur := calc.Order.Currency
	p := a.prog
	calc.Affiliate = &commission.Affiliate{ID: a.id, Email: a.email, Rate: a.rate}
	calc.Program = commission.Program{Currency: cur, Type: commission.Type(p.typ), Value: p.value,
		Base: commission.Base(p.base), Recurring: commission.Recurring(p.recurring), TierRate: p.tierRate}
	if p.months != nil {
		calc.Program.RecurringMonths = int(*p.months)
	}
	for _, t := range heldsway.PlatformTiers(cur) {
		calc.Platform.Tiers = append(calc.Platform.Tiers, commission.Tier{Min: t.MinAmount, Max: t.MaxAmount, Rate: t.Rate})
	}
	calc.Platform.BaseRate = heldsway.PlatformBaseRate

	if linkID != nil {
		r, err := linkRuleFor(q.rows, wsID, *linkID, heldsway.LinkRuleOrder{Currency: cur.Code, Total: in.Total, Items: in.LineItems})
		if err != nil {
			return calc, err
		}
		if r != nil {
			calc.LinkRule = &commission.LinkRule{Type: commission.Type(r.Type), Value: r.Value}
		}
	}

	if p.tierRate != nil && *p.tierRate > 0 && a.parentID != nil {
		var email, status string
		err := q.row(qConvParent, wsID, *a.parentID).Scan(&email, &status)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return calc, err
		}
		// Only an active parent earns: the same rule as for the referrer.
		if err == nil && status == heldsway.AffiliateActive {
			calc.Affiliate.Parent = &commission.Parent{ID: *a.parentID, Email: email}
		}
	}
	// The workspace tiers are read only when the precedence can reach them,
	// and only in the currency they are kept in (the default program's).
	if a.rate == nil && p.value == nil {
		rows, err := q.rows(qConvTiers, wsID, cur.Code)
		if err != nil {
			return calc, err
		}
		for rows.Next() {
			var t commission.Tier
			var hi sql.NullInt64
			if err := rows.Scan(&t.Min, &hi, &t.Rate); err != nil {
				rows.Close()
				return calc, err
			}
			t.Max = fromNullInt(hi)
			calc.Tiers = append(calc.Tiers, t)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return calc, err
		}
	}
	// A renewal: an order of the same subscription was converted before this
	// one. Months count from the subscription's first order.
	if in.SubscriptionID != "" {
		var first sql.NullInt64
		if err := q.row(qConvRenewal, wsID, in.SubscriptionID, ts(in.OccurredAt)).Scan(&first); err != nil {
			return calc, err
		}
		if first.Valid {
			calc.Order.Renewal = &commission.Renewal{MonthsSinceFirst: max(0, commission.MonthsSince(fromTS(first.Int64), in.OccurredAt))}
		}
	}
	return calc, nil
}

// findConvCustomer finds the customer by e-mail, else by external id; nil if
// neither is known or none matches.
func findConvCustomer(q *convQ, wsID int64, c heldsway.OrderCustomer) (*convCustomer, error) {
	var row *sql.Row
	switch {
	case c.Email != "" && c.ID != "":
		row = q.row(qConvCustomerBoth, wsID, c.Email, c.ID)
	case c.Email != "":
		row = q.row(qConvCustomerEmail, wsID, c.Email)
	case c.ID != "":
		row = q.row(qConvCustomerID, wsID, c.ID)
	default:
		return nil, nil
	}
	var (
		cu         convCustomer
		aff, bound sql.NullInt64
	)
	err := row.Scan(&cu.id, &aff, &bound)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	cu.affiliateID, cu.boundAt = fromNullInt(aff), fromNullTS(bound)
	return &cu, nil
}

// bindCustomer records the customer (when the order names one) and, for a
// recurring or lifetime program, binds it to the crediting affiliate. The first
// binding wins: a bound customer keeps its affiliate. A self-referral binds
// nobody. It returns the customer's id, nil when the order names none.
func (s *Store) bindCustomer(q *convQ, wsID int64, in *heldsway.ConversionInput, cust *convCustomer, att attribution, selfReferral bool) (*int64, error) {
	c := in.Customer
	if c.Email == "" && c.ID == "" {
		return nil, nil
	}
	var affID, progID, bound sql.NullInt64
	if a := att.aff; a != nil && !selfReferral && (a.prog.recurring == heldsway.RecurringMonths || a.prog.recurring == heldsway.RecurringLifetime) {
		affID, progID = sql.NullInt64{Int64: a.id, Valid: true}, sql.NullInt64{Int64: a.prog.id, Valid: true}
		bound = sql.NullInt64{Int64: ts(in.OccurredAt), Valid: true}
	}
	now := ts(s.Now())
	if cust == nil {
		// Not looked up, or not found: insert, and find it on a conflict.
		var id int64
		err := q.row(qConvCustomerInsert, wsID, nullStr(c.Email), nullStr(c.ID), nullStr(c.Name), affID, progID, bound, now).Scan(&id)
		if err == nil {
			return &id, nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		if cust, err = findConvCustomer(q, wsID, c); err != nil {
			return nil, err
		} else if cust == nil {
			return nil, errors.New("customer vanished after a conflicting insert")
		}
	}
	if affID.Valid && cust.affiliateID == nil {
		if _, err := q.exec(qConvCustomerBind, affID, progID, bound, now, wsID, cust.id); err != nil {
			return nil, err
		}
	}
	return &cust.id, nil
}

// insertOrder inserts the order and sets its id; a duplicate order_id is the
// CONFLICT naming the existing order.
func insertOrder(q *convQ, o *heldsway.Order) error {
	var affID sql.NullInt64
	if o.Affiliate != nil {
		affID = sql.NullInt64{Int64: o.Affiliate.ID, Valid: true}
	}
	var meta sql.NullString
	if o.Metadata != nil {
		meta = sql.NullString{String: string(o.Metadata), Valid: true}
	}
	err := q.row(qConvOrderInsert,
		o.WorkspaceID, o.OrderID, o.Status, o.Currency, o.Total, o.Subtotal, o.Discount, o.Tax, o.CommissionAmount,
		nullInt(o.CommissionRate), affID, nullInt(o.ProgramID), nullInt(o.LinkID), nullStr(o.ClickID), nullInt(o.CouponID),
		nullStr(o.CouponCode), nullInt(o.CustomerID), nullStr(o.Customer.Email), nullStr(o.Customer.Name),
		nullStr(o.SubscriptionID), o.Attribution, joinList(o.Flags), meta, ts(o.ConvertedAt), nullTS(o.AutoApproveAt),
		ts(o.CreatedAt)).Scan(&o.ID)
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	// The conflicting order is committed, or earlier in this transaction:
	// PostgreSQL's ON CONFLICT waited for its transaction, and this statement
	// sees it.
	var existing int64
	if err := q.row(qConvOrderExisting, o.WorkspaceID, o.OrderID).Scan(&existing); err != nil {
		return err
	}
	return heldsway.DuplicateOrder(o.OrderID, existing)
}

// orderItemCols is the parameter count of one order_items row.
const orderItemCols = 7

// insertOrderItems adds the order's line items to the batch's rows (convRows).
func insertOrderItems(q *convQ, o *heldsway.Order) {
	r := q.batchRows
	for _, it := range o.Items {
		r.items = append(r.items, o.WorkspaceID, o.ID, nullStr(it.ProductID), nullStr(it.Name), nullStr(it.Category),
			it.Quantity, it.Price)
	}
}

// convRows are a batch's order items, audit entries and events, written after
// its last order in statements of 16, 4 and 1 rows: a statement's own cost
// (database/sql, the binding, the engine's set-up) was about as much as its
// row's, and a conversion wrote four of them. On SQLite the parameters are
// anonymous, bound by position: a long statement with numbered parameters
// binds in time quadratic in its size there.
type convRows struct {
	items, audit, events []any
}

// Each table's columns and its statements of 1, 4 and 16 rows.
var (
	convItemRows  = newConvRowStmts(qConvItemHead, orderItemCols)
	convAuditRows = newConvRowStmts(qConvAuditHead, 10)
	convEventRows = newConvRowStmts(qConvEventsHead, 6)
)

type convRowStmts struct {
	cols       int
	sqlite, pg convRowTexts
}

type convRowTexts struct{ one, four, many string }

func newConvRowStmts(head string, cols int) convRowStmts {
	texts := func(numbered bool) convRowTexts {
		rows := func(n int) string { return head + valuesRows(n, cols, numbered) }
		return convRowTexts{one: rows(1), four: rows(4), many: rows(16)}
	}
	return convRowStmts{cols: cols, sqlite: texts(false), pg: texts(true)}
}

// exec inserts the rows of args.
func (st convRowStmts) exec(q *convQ, args []any) error {
	t := st.pg
	if q.sqlite {
		t = st.sqlite
	}
	for len(args) > 0 {
		n := len(args) / st.cols
		text, k := t.one, 1
		switch {
		case n >= 16:
			text, k = t.many, 16
		case n >= 4:
			text, k = t.four, 4
		}
		if _, err := q.exec(text, args[:k*st.cols]...); err != nil {
			return err
		}
		args = args[k*st.cols:]
	}
	return nil
}

// write inserts the collected rows, each table's in the order they came.
func (r *convRows) write(q *convQ) error {
	if err := convItemRows.exec(q, r.items); err != nil {
		return err
	}
	if err := convAuditRows.exec(q, r.audit); err != nil {
		return err
	}
	return convEventRows.exec(q, r.events)
}
