package store

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"time"

	"github.com/heldsway/heldsway/internal/commission"
	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

var _ heldsway.ProgramStore = (*Store)(nil)

// rowQuerier is satisfied by *sql.DB and *sql.Tx, so one read helper serves a
// plain read and a read inside a write transaction.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// createWorkspaceDefaults gives a new workspace its default program and its
// workspace_settings row, in the workspace's own transaction: no workspace is
// ever seen without them. Provisioning is not audited, like the workspace itself.
func (s *Store) createWorkspaceDefaults(ctx context.Context, tx *sql.Tx, w *heldsway.Workspace, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO workspace_settings (workspace_id, timezone, updated_at)
		VALUES ($1, $2, $3)`, w.ID, heldsway.DefaultTimezone, ts(now)); err != nil {
		return err
	}
	p := heldsway.DefaultProgramFor(w)
	p.CreatedAt, p.UpdatedAt = now, now
	return insertProgram(ctx, tx, p)
}

const programCols = `id, workspace_id, name, currency, commission_type, commission_value, commission_base,
	recurring, recurring_months, cookie_days, attribution_model, tier_rate, status, is_default,
	auto_approve_enabled, auto_approve_delay_days, auto_approve_min_amount, auto_approve_max_amount,
	allow_self_registration, created_at, updated_at`

func scanProgram(sc scanner) (*heldsway.Program, error) {
	var p heldsway.Program
	var value, months, tier, lo, hi sql.NullInt64
	var created, updated int64
	err := sc.Scan(&p.ID, &p.WorkspaceID, &p.Name, &p.Currency, &p.CommissionType, &value, &p.CommissionBase,
		&p.Recurring, &months, &p.CookieDays, &p.AttributionModel, &tier, &p.Status, &p.IsDefault,
		&p.AutoApproveEnabled, &p.AutoApproveDelayDays, &lo, &hi, &p.AllowSelfRegistration, &created, &updated)
	if err != nil {
		return nil, err
	}
	p.CommissionValue, p.TierRate = fromNullInt(value), fromNullInt(tier)
	p.AutoApproveMinAmount, p.AutoApproveMaxAmount = fromNullInt(lo), fromNullInt(hi)
	if months.Valid {
		m := int(months.Int64)
		p.RecurringMonths = &m
	}
	p.CreatedAt, p.UpdatedAt = fromTS(created), fromTS(updated)
	return &p, nil
}

func nullMonths(m *int) sql.NullInt64 {
	if m == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: int64(*m), Valid: true}
}

func insertProgram(ctx context.Context, tx *sql.Tx, p *heldsway.Program) error {
	return tx.QueryRowContext(ctx, `INSERT INTO programs (workspace_id, name, currency, commission_type,
			commission_value, commission_base, recurring, recurring_months, cookie_days, attribution_model,
			tier_rate, status, is_default, auto_approve_enabled, auto_approve_delay_days, auto_approve_min_amount,
			auto_approve_max_amount, allow_self_registration, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
		RETURNING id`,
		p.WorkspaceID, p.Name, p.Currency, p.CommissionType, nullInt(p.CommissionValue), p.CommissionBase,
		p.Recurring, nullMonths(p.RecurringMonths), p.CookieDays, p.AttributionModel, nullInt(p.TierRate),
		p.Status, p.IsDefault, p.AutoApproveEnabled, p.AutoApproveDelayDays, nullInt(p.AutoApproveMinAmount),
		nullInt(p.AutoApproveMaxAmount), p.AllowSelfRegistration, ts(p.CreatedAt), ts(p.UpdatedAt)).Scan(&p.ID)
}

// updateProgram writes every mutable column of p, which was before, and
// reschedules the auto-approval of the program's pending orders if it changed.
func updateProgram(ctx context.Context, tx *sql.Tx, before, p *heldsway.Program) error {
	if err := writeProgram(ctx, tx, p); err != nil {
		return err
	}
	if before.AutoApproveEnabled == p.AutoApproveEnabled && before.AutoApproveDelayDays == p.AutoApproveDelayDays {
		return nil
	}
	return rescheduleAutoApproval(ctx, tx, p)
}

// rescheduleAutoApproval sets auto_approve_at of every pending order that
// follows p (its own, and for the default program the unattributed ones) as
// a conversion recorded now would: converted_at plus the delay when
// auto-approval is on and the order is not a held self-referral, else none.
// So turning auto-approval on reaches the orders waiting for review, a new
// delay moves them, and turning it off leaves the sweep nothing to skip.
// The min and max amounts need nothing here: the sweep reads them when an
// order falls due.
func rescheduleAutoApproval(ctx context.Context, tx *sql.Tx, p *heldsway.Program) error {
	which := `program_id = $3`
	if p.IsDefault {
		which = `(program_id = $3 OR program_id IS NULL)`
	}
	var (
		q    string
		args = []any{p.WorkspaceID, ts(p.UpdatedAt), p.ID}
	)
	if p.AutoApproveEnabled {
		q = `UPDATE orders SET auto_approve_at = converted_at + $4, updated_at = $2
			WHERE workspace_id = $1 AND ` + which + ` AND status = 'pending'
			AND (' ' || flags || ' ') NOT LIKE '% ` + string(commission.FlagSelfReferral) + ` %'
			AND (auto_approve_at IS NULL OR auto_approve_at <> converted_at + $4)`
		args = append(args, int64(p.AutoApproveDelayDays)*int64(24*time.Hour/time.Microsecond))
	} else {
		q = `UPDATE orders SET auto_approve_at = NULL, updated_at = $2
			WHERE workspace_id = $1 AND ` + which + ` AND status = 'pending' AND auto_approve_at IS NOT NULL`
	}
	_, err := tx.ExecContext(ctx, q, args...)
	return err
}

// writeProgram writes every mutable column of p.
func writeProgram(ctx context.Context, tx *sql.Tx, p *heldsway.Program) error {
	_, err := tx.ExecContext(ctx, `UPDATE programs SET name = $1, currency = $2, commission_type = $3,
			commission_value = $4, commission_base = $5, recurring = $6, recurring_months = $7, cookie_days = $8,
			attribution_model = $9, tier_rate = $10, status = $11, auto_approve_enabled = $12,
			auto_approve_delay_days = $13, auto_approve_min_amount = $14, auto_approve_max_amount = $15,
			allow_self_registration = $16, updated_at = $17
		WHERE workspace_id = $18 AND id = $19`,
		p.Name, p.Currency, p.CommissionType, nullInt(p.CommissionValue), p.CommissionBase, p.Recurring,
		nullMonths(p.RecurringMonths), p.CookieDays, p.AttributionModel, nullInt(p.TierRate), p.Status,
		p.AutoApproveEnabled, p.AutoApproveDelayDays, nullInt(p.AutoApproveMinAmount),
		nullInt(p.AutoApproveMaxAmount), p.AllowSelfRegistration, ts(p.UpdatedAt), p.WorkspaceID, p.ID)
	return err
}

func findProgram(ctx context.Context, q rowQuerier, wsID, id int64) (*heldsway.Program, error) {
	p, err := scanProgram(q.QueryRowContext(ctx, `SELECT `+programCols+` FROM programs
		WHERE workspace_id = $1 AND id = $2`, wsID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Program")
	}
	return p, err
}

func findDefaultProgram(ctx context.Context, q rowQuerier, wsID int64) (*heldsway.Program, error) {
	p, err := scanProgram(q.QueryRowContext(ctx, `SELECT `+programCols+` FROM programs
		WHERE workspace_id = $1 AND is_default = $2`, wsID, true))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Default program")
	}
	return p, err
}

// CreateProgram validates in and inserts a non-default program. Errors: EVALIDATION.
func (s *Store) CreateProgram(ctx context.Context, wsID int64, in heldsway.ProgramPatch) (*heldsway.Program, error) {
	p, err := heldsway.NewProgram(in)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	p.WorkspaceID, p.CreatedAt, p.UpdatedAt = wsID, now, now
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if err := insertProgram(ctx, tx, p); err != nil {
			return err
		}
		return s.record(ctx, tx, wsID, "program.create", "program", p.ID, nil, p, "program.created")
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// FindProgram returns a program of the workspace. Errors: ENOTFOUND.
func (s *Store) FindProgram(ctx context.Context, wsID, id int64) (*heldsway.Program, error) {
	p, err := findProgram(ctx, s.r, wsID, id)
	return p, unavailable(err)
}

// FindDefaultProgram returns the workspace's default program. Errors: ENOTFOUND.
func (s *Store) FindDefaultProgram(ctx context.Context, wsID int64) (*heldsway.Program, error) {
	p, err := findDefaultProgram(ctx, s.r, wsID)
	return p, unavailable(err)
}

// ListPrograms returns one page of the workspace's programs.
func (s *Store) ListPrograms(ctx context.Context, wsID int64, f heldsway.ProgramFilter, o heldsway.ListOptions) (heldsway.PageResult[*heldsway.Program], error) {
	var res heldsway.PageResult[*heldsway.Program]
	where, args := `WHERE workspace_id = $1`, []any{wsID}
	if f.Status != "" {
		args = append(args, f.Status)
		where += ` AND status = $2`
	}
	col, val := sortCol{expr: "created_at", isInt: true}, func(p *heldsway.Program) (*string, int64) {
		return intStr(ts(p.CreatedAt)), p.ID
	}
	if o.Sort == heldsway.ProgramSortName {
		col, val = sortCol{expr: "name"}, func(p *heldsway.Program) (*string, int64) { return strPtr(p.Name), p.ID }
	}
	q, args, err := keyset(col, "id", o, where, args)
	if err != nil {
		return res, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+programCols+` FROM programs `+q, args...)
	if err != nil {
		return res, unavailable(err)
	}
	defer rows.Close()
	items := []*heldsway.Program{}
	for rows.Next() {
		p, err := scanProgram(rows)
		if err != nil {
			return res, unavailable(err)
		}
		items = append(items, p)
	}
	if err := rows.Err(); err != nil {
		return res, unavailable(err)
	}
	return pageOf(items, o, val), nil
}

// UpdateProgram applies a partial update in one transaction. A patch that
// changes nothing writes nothing. Errors: ENOTFOUND, EVALIDATION, ECONFLICT.
func (s *Store) UpdateProgram(ctx context.Context, wsID, id int64, in heldsway.ProgramPatch) (*heldsway.Program, error) {
	var out *heldsway.Program
	err := s.tx(ctx, func(tx *sql.Tx) error {
		before, err := findProgram(ctx, tx, wsID, id)
		if err != nil {
			return err
		}
		after, err := s.changeProgram(ctx, tx, before, in)
		out = after
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// changeProgram applies in to before inside tx, enforces the rules that need
// stored state, writes and records the change. It returns before unchanged
// when in changes nothing.
func (s *Store) changeProgram(ctx context.Context, tx *sql.Tx, before *heldsway.Program, in heldsway.ProgramPatch) (*heldsway.Program, error) {
	after := *before
	if err := after.Apply(in); err != nil {
		return nil, err
	}
	if reflect.DeepEqual(&after, before) {
		return before, nil
	}
	if after.Status == heldsway.ProgramArchived && before.IsDefault {
		return nil, heldsway.Errorf(heldsway.ECONFLICT, "The default program cannot be archived.")
	}
	if after.Currency != before.Currency {
		n, err := countAffiliates(ctx, tx, before.WorkspaceID, before.ID)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			return nil, heldsway.Errorf(heldsway.ECONFLICT, "The currency of a program with affiliates cannot change.")
		}
		if before.IsDefault {
			if err := rescaleWorkspaceAmounts(ctx, tx, before.WorkspaceID, before.Money(), after.Money()); err != nil {
				return nil, err
			}
		}
	}
	after.UpdatedAt = s.Now()
	if err := updateProgram(ctx, tx, before, &after); err != nil {
		return nil, err
	}
	return &after, s.record(ctx, tx, before.WorkspaceID, "program.update", "program", before.ID, before, &after, "program.updated")
}

func countAffiliates(ctx context.Context, tx *sql.Tx, wsID, programID int64) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM affiliates WHERE workspace_id = $1 AND program_id = $2`,
		wsID, programID).Scan(&n)
	return n, err
}

// rescaleWorkspaceAmounts re-expresses the amounts kept in the default
// program's currency (commission tiers, payout minimum) when that currency
// changes, keeping their decimal values. EVALIDATION on currency if one cannot
// be expressed in the new currency.
func rescaleWorkspaceAmounts(ctx context.Context, tx *sql.Tx, wsID int64, from, to money.Currency) error {
	bad := func(what string, minor int64) error {
		return heldsway.Invalid("currency", "The currency cannot change to "+to.Code+": the "+what+" "+
			money.Format(minor, from)+" cannot be expressed in it.")
	}
	var minimum int64
	if err := tx.QueryRowContext(ctx, `SELECT payout_minimum FROM workspace_settings WHERE workspace_id = $1`,
		wsID).Scan(&minimum); err != nil {
		return err
	}
	m, ok := heldsway.RescaleMinor(minimum, from, to)
	if !ok {
		return bad("payout minimum amount", minimum)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE workspace_settings SET payout_minimum = $1 WHERE workspace_id = $2`, m, wsID); err != nil {
		return err
	}
	tiers, err := listTiers(ctx, tx, wsID)
	if err != nil {
		return err
	}
	for _, t := range tiers {
		lo, ok := heldsway.RescaleMinor(t.MinAmount, from, to)
		if !ok {
			return bad("commission tier amount", t.MinAmount)
		}
		hi := t.MaxAmount
		if hi != nil {
			v, ok := heldsway.RescaleMinor(*hi, from, to)
			if !ok {
				return bad("commission tier amount", *hi)
			}
			hi = &v
		}
		if _, err := tx.ExecContext(ctx, `UPDATE commission_tiers SET min_amount = $1, max_amount = $2
			WHERE workspace_id = $3 AND id = $4`, lo, nullInt(hi), wsID, t.ID); err != nil {
			return err
		}
	}
	return nil
}

// DeleteProgram deletes a program without affiliates. Errors: ENOTFOUND;
// ECONFLICT for the default program or a program with affiliates.
func (s *Store) DeleteProgram(ctx context.Context, wsID, id int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		p, err := findProgram(ctx, tx, wsID, id)
		if err != nil {
			return err
		}
		if p.IsDefault {
			return heldsway.Errorf(heldsway.ECONFLICT, "The default program cannot be deleted.")
		}
		n, err := countAffiliates(ctx, tx, wsID, id)
		if err != nil {
			return err
		}
		if n > 0 {
			return heldsway.Errorf(heldsway.ECONFLICT, "The program has %d affiliate(s) and cannot be deleted; archive it instead.", n)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM programs WHERE workspace_id = $1 AND id = $2`, wsID, id); err != nil {
			return err
		}
		return s.record(ctx, tx, wsID, "program.delete", "program", id, p, nil, "program.deleted")
	})
}
