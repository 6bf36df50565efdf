package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

var _ heldsway.SettingsStore = (*Store)(nil)

// lockWorkspaceSettings takes the workspace's settings row lock for the rest of
// tx. Writes that check the workspace's tiers as a whole (no overlap, a
// maximum count) take it first, so two concurrent writes on PostgreSQL cannot
// both pass the check; a no-op UPDATE locks on both engines without a
// dialect-specific SELECT … FOR UPDATE (SQLite has one writer anyway).
func lockWorkspaceSettings(ctx context.Context, tx *sql.Tx, wsID int64) error {
	res, err := tx.ExecContext(ctx, `UPDATE workspace_settings SET updated_at = updated_at WHERE workspace_id = $1`, wsID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return heldsway.NotFound("Workspace settings")
	}
	return nil
}

func readTimezone(ctx context.Context, q rowQuerier, wsID int64) (string, error) {
	var tz string
	err := q.QueryRowContext(ctx, `SELECT timezone FROM workspace_settings WHERE workspace_id = $1`, wsID).Scan(&tz)
	if errors.Is(err, sql.ErrNoRows) {
		return "", heldsway.NotFound("Workspace settings")
	}
	return tz, err
}

// Settings returns the settings object of digest §5.6 and the time zone.
// Errors: ENOTFOUND.
func (s *Store) Settings(ctx context.Context, wsID int64) (*heldsway.Settings, error) {
	p, err := findDefaultProgram(ctx, s.r, wsID)
	if err != nil {
		return nil, unavailable(err)
	}
	tz, err := readTimezone(ctx, s.r, wsID)
	if err != nil {
		return nil, unavailable(err)
	}
	return heldsway.SettingsOf(p, tz), nil
}

// UpdateSettings applies every change of in to the default program and the
// workspace settings, or none. Errors: EVALIDATION keyed by setting name.
func (s *Store) UpdateSettings(ctx context.Context, wsID int64, in heldsway.SettingsPatch) (*heldsway.Settings, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	var out *heldsway.Settings
	err := s.tx(ctx, func(tx *sql.Tx) error {
		p, err := findDefaultProgram(ctx, tx, wsID)
		if err != nil {
			return err
		}
		tz, err := readTimezone(ctx, tx, wsID)
		if err != nil {
			return err
		}
		before := heldsway.SettingsOf(p, tz)
		after := *p
		if err := after.Apply(in.ProgramPatch()); err != nil {
			return settingsError(err)
		}
		if in.Timezone != nil {
			tz = *in.Timezone
		}
		out = heldsway.SettingsOf(&after, tz)
		if reflect.DeepEqual(&after, p) && tz == before.Timezone {
			return nil
		}
		now := s.Now()
		after.UpdatedAt = now
		if err := updateProgram(ctx, tx, p, &after); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE workspace_settings SET timezone = $1, updated_at = $2
			WHERE workspace_id = $3`, tz, ts(now), wsID); err != nil {
			return err
		}
		return s.record(ctx, tx, wsID, "settings.update", "settings", 0, before, out, "settings.updated")
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func nullEq(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// settingsError renames the program field of a validation error to the setting
// it came from.
func settingsError(err error) error {
	var he *heldsway.Error
	if !errors.As(err, &he) || he.Details == nil {
		return err
	}
	if v, ok := he.Details["commission_value"]; ok {
		delete(he.Details, "commission_value")
		msgs := v.([]string)
		for i, m := range msgs {
			msgs[i] = strings.ReplaceAll(m, "commission value", "commission rate")
		}
		he.Details[heldsway.SettingCommissionRate] = msgs
	}
	return he
}

const tierCols = `id, workspace_id, min_amount, max_amount, rate, created_at, updated_at`

func scanTier(sc scanner) (*heldsway.CommissionTier, error) {
	var t heldsway.CommissionTier
	var hi sql.NullInt64
	var created, updated int64
	if err := sc.Scan(&t.ID, &t.WorkspaceID, &t.MinAmount, &hi, &t.Rate, &created, &updated); err != nil {
		return nil, err
	}
	t.MaxAmount, t.CreatedAt, t.UpdatedAt = fromNullInt(hi), fromTS(created), fromTS(updated)
	return &t, nil
}

func listTiers(ctx context.Context, q rowQuerier, wsID int64) ([]*heldsway.CommissionTier, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+tierCols+` FROM commission_tiers WHERE workspace_id = $1
		ORDER BY min_amount, id`, wsID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*heldsway.CommissionTier{}
	for rows.Next() {
		t, err := scanTier(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func insertTier(ctx context.Context, tx *sql.Tx, t *heldsway.CommissionTier) error {
	return tx.QueryRowContext(ctx, `INSERT INTO commission_tiers (workspace_id, min_amount, max_amount, rate, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		t.WorkspaceID, t.MinAmount, nullInt(t.MaxAmount), t.Rate, ts(t.CreatedAt), ts(t.UpdatedAt)).Scan(&t.ID)
}

// tierCurrency is the currency tiers are in: the default program's.
func tierCurrency(ctx context.Context, q rowQuerier, wsID int64) (money.Currency, error) {
	p, err := findDefaultProgram(ctx, q, wsID)
	if err != nil {
		return money.Currency{}, err
	}
	return p.Money(), nil
}

// CommissionTiers returns the workspace's tiers by min_amount and their currency.
func (s *Store) CommissionTiers(ctx context.Context, wsID int64) ([]*heldsway.CommissionTier, money.Currency, error) {
	cur, err := tierCurrency(ctx, s.r, wsID)
	if err != nil {
		return nil, cur, unavailable(err)
	}
	tiers, err := listTiers(ctx, s.r, wsID)
	return tiers, cur, unavailable(err)
}

// checkOverlap reports, as a validation error on both bounds, the first other
// tier t's band overlaps.
func checkOverlap(t *heldsway.CommissionTier, others []*heldsway.CommissionTier, cur money.Currency) error {
	band := func(x *heldsway.CommissionTier) string {
		if x.MaxAmount == nil {
			return "from " + money.Format(x.MinAmount, cur) + " up"
		}
		return "from " + money.Format(x.MinAmount, cur) + " to " + money.Format(*x.MaxAmount, cur)
	}
	for _, o := range others {
		if o.ID != t.ID && t.Overlaps(o) {
			msg := fmt.Sprintf("The band %s overlaps commission tier %d (%s).", band(t), o.ID, band(o))
			fe := heldsway.FieldErrors{}
			fe.Add("min_amount", msg)
			fe.Add("max_amount", msg)
			return fe.Err()
		}
	}
	return nil
}

// CreateCommissionTier adds a tier. Errors: EVALIDATION (bad values, an
// overlap with another tier, more than MaxCommissionTiers).
func (s *Store) CreateCommissionTier(ctx context.Context, wsID int64, in heldsway.TierPatch) (*heldsway.CommissionTier, money.Currency, error) {
	var t *heldsway.CommissionTier
	var cur money.Currency
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := lockWorkspaceSettings(ctx, tx, wsID); err != nil {
			return err
		}
		var err error
		if cur, err = tierCurrency(ctx, tx, wsID); err != nil {
			return err
		}
		if t, err = heldsway.NewCommissionTier(in, cur); err != nil {
			return err
		}
		tiers, err := listTiers(ctx, tx, wsID)
		if err != nil {
			return err
		}
		if len(tiers) >= heldsway.MaxCommissionTiers {
			return heldsway.Invalid("min_amount", fmt.Sprintf("A workspace can have at most %d commission tiers.", heldsway.MaxCommissionTiers))
		}
		if err := checkOverlap(t, tiers, cur); err != nil {
			return err
		}
		now := s.Now()
		t.WorkspaceID, t.CreatedAt, t.UpdatedAt = wsID, now, now
		if err := insertTier(ctx, tx, t); err != nil {
			return err
		}
		return s.record(ctx, tx, wsID, "commission_tier.create", "commission_tier", t.ID, nil, t, "commission_tier.created")
	})
	if err != nil {
		return nil, cur, err
	}
	return t, cur, nil
}

// UpdateCommissionTier changes a tier's bounds or rate. Errors: ENOTFOUND, EVALIDATION.
func (s *Store) UpdateCommissionTier(ctx context.Context, wsID, id int64, in heldsway.TierPatch) (*heldsway.CommissionTier, money.Currency, error) {
	var out *heldsway.CommissionTier
	var cur money.Currency
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := lockWorkspaceSettings(ctx, tx, wsID); err != nil {
			return err
		}
		tiers, err := listTiers(ctx, tx, wsID)
		if err != nil {
			return err
		}
		var before *heldsway.CommissionTier
		for _, t := range tiers {
			if t.ID == id {
				before = t
			}
		}
		if before == nil {
			return heldsway.NotFound("Commission tier")
		}
		if cur, err = tierCurrency(ctx, tx, wsID); err != nil {
			return err
		}
		after := *before
		if err := after.Apply(in, cur); err != nil {
			return err
		}
		if err := checkOverlap(&after, tiers, cur); err != nil {
			return err
		}
		out = &after
		if after.MinAmount == before.MinAmount && nullEq(after.MaxAmount, before.MaxAmount) && after.Rate == before.Rate {
			return nil
		}
		after.UpdatedAt = s.Now()
		if _, err := tx.ExecContext(ctx, `UPDATE commission_tiers SET min_amount = $1, max_amount = $2, rate = $3,
			updated_at = $4 WHERE workspace_id = $5 AND id = $6`,
			after.MinAmount, nullInt(after.MaxAmount), after.Rate, ts(after.UpdatedAt), wsID, id); err != nil {
			return err
		}
		return s.record(ctx, tx, wsID, "commission_tier.update", "commission_tier", id, before, &after, "commission_tier.updated")
	})
	if err != nil {
		return nil, cur, err
	}
	return out, cur, nil
}

// DeleteCommissionTier removes a tier. Errors: ENOTFOUND.
func (s *Store) DeleteCommissionTier(ctx context.Context, wsID, id int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		t, err := scanTier(tx.QueryRowContext(ctx, `SELECT `+tierCols+` FROM commission_tiers
			WHERE workspace_id = $1 AND id = $2`, wsID, id))
		if errors.Is(err, sql.ErrNoRows) {
			return heldsway.NotFound("Commission tier")
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM commission_tiers WHERE workspace_id = $1 AND id = $2`, wsID, id); err != nil {
			return err
		}
		return s.record(ctx, tx, wsID, "commission_tier.delete", "commission_tier", id, t, nil, "commission_tier.deleted")
	})
}

// tierSet wraps a list of tiers for an audit snapshot, which must be an object.
type tierSet struct {
	Tiers []*heldsway.CommissionTier `json:"tiers"`
}

// ResetCommissionTiers replaces the workspace's tiers with the platform defaults
// in the default program's currency.
func (s *Store) ResetCommissionTiers(ctx context.Context, wsID int64) ([]*heldsway.CommissionTier, money.Currency, error) {
	var out []*heldsway.CommissionTier
	var cur money.Currency
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := lockWorkspaceSettings(ctx, tx, wsID); err != nil {
			return err
		}
		var err error
		if cur, err = tierCurrency(ctx, tx, wsID); err != nil {
			return err
		}
		before, err := listTiers(ctx, tx, wsID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM commission_tiers WHERE workspace_id = $1`, wsID); err != nil {
			return err
		}
		now := s.Now()
		out = []*heldsway.CommissionTier{}
		for _, d := range heldsway.PlatformTiers(cur) {
			t := d
			t.WorkspaceID, t.CreatedAt, t.UpdatedAt = wsID, now, now
			if err := insertTier(ctx, tx, &t); err != nil {
				return err
			}
			out = append(out, &t)
		}
		return s.record(ctx, tx, wsID, "commission_tier.reset", "commission_tier", 0,
			tierSet{before}, tierSet{out}, "commission_tiers.reset")
	})
	if err != nil {
		return nil, cur, err
	}
	return out, cur, nil
}

func readBranding(ctx context.Context, q rowQuerier, wsID int64) (*heldsway.Branding, error) {
	var name, primary, secondary, logo, domain sql.NullString
	err := q.QueryRowContext(ctx, `SELECT brand_name, primary_color, secondary_color, logo_url, custom_domain
		FROM workspace_settings WHERE workspace_id = $1`, wsID).Scan(&name, &primary, &secondary, &logo, &domain)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Workspace settings")
	} else if err != nil {
		return nil, err
	}
	str := func(v sql.NullString) *string {
		if !v.Valid {
			return nil
		}
		return &v.String
	}
	return &heldsway.Branding{BrandName: str(name), PrimaryColor: str(primary), SecondaryColor: str(secondary),
		LogoURL: str(logo), CustomDomain: str(domain)}, nil
}

// Branding returns the workspace's branding.
func (s *Store) Branding(ctx context.Context, wsID int64) (*heldsway.Branding, error) {
	b, err := readBranding(ctx, s.r, wsID)
	return b, unavailable(err)
}

// UpdateBranding applies a partial update. Errors: EVALIDATION; ECONFLICT when
// another workspace has the custom domain.
func (s *Store) UpdateBranding(ctx context.Context, wsID int64, in heldsway.BrandingPatch) (*heldsway.Branding, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	var out *heldsway.Branding
	err := s.tx(ctx, func(tx *sql.Tx) error {
		before, err := readBranding(ctx, tx, wsID)
		if err != nil {
			return err
		}
		after := *before
		if err := after.Apply(in); err != nil {
			return err
		}
		out = &after
		if reflect.DeepEqual(before, &after) {
			return nil
		}
		str := func(p *string) sql.NullString {
			if p == nil {
				return sql.NullString{}
			}
			return sql.NullString{String: *p, Valid: true}
		}
		_, err = tx.ExecContext(ctx, `UPDATE workspace_settings SET brand_name = $1, primary_color = $2,
			secondary_color = $3, logo_url = $4, custom_domain = $5, updated_at = $6 WHERE workspace_id = $7`,
			str(after.BrandName), str(after.PrimaryColor), str(after.SecondaryColor), str(after.LogoURL),
			str(after.CustomDomain), ts(s.Now()), wsID)
		if isUniqueViolation(err) {
			return heldsway.Errorf(heldsway.ECONFLICT, "The custom domain %s is already used by another workspace.", *after.CustomDomain)
		} else if err != nil {
			return err
		}
		return s.record(ctx, tx, wsID, "branding.update", "branding", 0, before, &after, "branding.updated")
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func readPayoutSettings(ctx context.Context, q rowQuerier, wsID int64) (*heldsway.PayoutSettings, error) {
	p, err := findDefaultProgram(ctx, q, wsID)
	if err != nil {
		return nil, err
	}
	ps := heldsway.PayoutSettings{Currency: p.Currency}
	err = q.QueryRowContext(ctx, `SELECT payout_frequency, payout_minimum, allow_early_payouts
		FROM workspace_settings WHERE workspace_id = $1`, wsID).Scan(&ps.Frequency, &ps.MinimumAmount, &ps.AllowEarlyRequests)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Workspace settings")
	}
	return &ps, err
}

// PayoutSettings returns the workspace's payout settings.
func (s *Store) PayoutSettings(ctx context.Context, wsID int64) (*heldsway.PayoutSettings, error) {
	ps, err := readPayoutSettings(ctx, s.r, wsID)
	return ps, unavailable(err)
}

// UpdatePayoutSettings applies a partial update. Errors: EVALIDATION.
func (s *Store) UpdatePayoutSettings(ctx context.Context, wsID int64, in heldsway.PayoutSettingsPatch) (*heldsway.PayoutSettings, error) {
	var out *heldsway.PayoutSettings
	err := s.tx(ctx, func(tx *sql.Tx) error {
		before, err := readPayoutSettings(ctx, tx, wsID)
		if err != nil {
			return err
		}
		after := *before
		if err := after.Apply(in); err != nil {
			return err
		}
		out = &after
		if after == *before {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE workspace_settings SET payout_frequency = $1, payout_minimum = $2,
			allow_early_payouts = $3, updated_at = $4 WHERE workspace_id = $5`,
			after.Frequency, after.MinimumAmount, after.AllowEarlyRequests, ts(s.Now()), wsID); err != nil {
			return err
		}
		return s.record(ctx, tx, wsID, "payout_settings.update", "payout_settings", 0, before, &after, "payout_settings.updated")
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
