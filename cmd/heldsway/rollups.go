package main

import (
	"context"
	"fmt"
	"io"

	"github.com/heldsway/heldsway/internal/store"
)

// runRollups: heldsway rollups rebuild [--workspace ID] [--db URL] [--json].
func runRollups(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "rebuild" {
		return usageError{"rollups: expected rebuild"}
	}
	fs := newFlags("rollups rebuild")
	db := dbFlag(fs, getenv)
	asJSON := fs.Bool("json", false, "print JSON")
	ws := fs.Int64("workspace", 0, "workspace id (default: every workspace)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *ws < 0 {
		return usageError{"rollups rebuild: --workspace must be a workspace id"}
	}
	st, err := store.Open(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	var results []store.RebuildResult
	if *ws > 0 {
		r, err := st.RebuildRollups(ctx, *ws)
		if err != nil {
			return cliError(err)
		}
		results = append(results, *r)
	} else if results, err = st.RebuildAllRollups(ctx); err != nil {
		return cliError(err)
	}
	if *asJSON {
		return printJSON(stdout, map[string]any{"rebuilt": results})
	}
	for _, r := range results {
		span := "no events"
		if r.From != "" {
			span = r.From + " to " + r.To
		}
		fmt.Fprintf(stdout, "workspace %d: rollups rebuilt in %s (%s, %d days): %d clicks, %d storefront events, %d orders in %.1fs\n",
			r.WorkspaceID, r.Timezone, span, r.Days, r.Clicks, r.Events, r.Orders, r.Seconds)
	}
	return nil
}
