-- +goose Up
-- The fold watermark of a workspace's rollups (store/rollupfold.go): from
-- this day (yyyymmdd) on, rollup_daily holds only the day rows (span 1), and
-- a day is added to its 4-, 16- and 64-day blocks once, after it ended. NULL:
-- every change goes to all four spans at once, as before (and always on
-- PostgreSQL, where nothing folds).
ALTER TABLE rollup_state ADD COLUMN folded_to INTEGER;

-- +goose Down
ALTER TABLE rollup_state DROP COLUMN folded_to;
