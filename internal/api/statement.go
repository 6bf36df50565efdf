package api

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"codeberg.org/go-pdf/fpdf"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

// The payout statement: a PDF an affiliate can keep, listing what the payout
// settles. Amounts are money.Format of the same minor units the API shows, so
// the statement matches GET /v1/payouts/{id} to the cent.

type pdfOut struct {
	ContentType        string `header:"Content-Type" doc:"application/pdf"`
	ContentDisposition string `header:"Content-Disposition" doc:"attachment; filename=\"payout-<id>-statement.pdf\""`
	CacheControl       string `header:"Cache-Control" doc:"no-store"`
	Body               []byte
}

func (s *Server) handlePayoutStatement(ctx context.Context, in *payoutIDInput) (*pdfOut, error) {
	p := principal(ctx)
	po, err := s.Store.FindPayout(ctx, p.Workspace.ID, in.ID, true)
	if err != nil {
		return nil, err
	}
	b, err := payoutStatementPDF(po, p.Workspace.Name, s.Store.Now())
	if err != nil {
		return nil, err
	}
	return &pdfOut{ContentType: "application/pdf", CacheControl: "no-store",
		ContentDisposition: fmt.Sprintf(`attachment; filename="payout-%d-statement.pdf"`, po.ID), Body: b}, nil
}

// payoutStatementPDF renders the statement. Content streams are left
// uncompressed: statements are small, and the text stays searchable by tools
// (and tests) that do not inflate streams. Core fonts speak Windows-1252, so
// names are translated to it; characters it lacks print as '?'.
func payoutStatementPDF(po *heldsway.Payout, workspace string, now time.Time) ([]byte, error) {
	cur := orderCurrency(po.Currency)
	amt := func(m int64) string { return money.Format(m, cur) }
	day := func(t time.Time) string { return t.UTC().Format("2006-01-02") }

	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCompression(false)
	pdf.SetCreationDate(now)
	pdf.SetModificationDate(now)
	pdf.SetCatalogSort(true)
	pdf.SetTitle(fmt.Sprintf("Payout statement %d", po.ID), true)
	pdf.SetCreator("HeldSway", true)
	pdf.SetProducer("HeldSway", true)
	pdf.SetAutoPageBreak(true, 18)
	pdf.AliasNbPages("{nb}")
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	pdf.SetFooterFunc(func() {
		pdf.SetY(-12)
		pdf.SetFont("Helvetica", "", 8)
		pdf.CellFormat(0, 5, tr(fmt.Sprintf("Payout %d - page %d of {nb}", po.ID, pdf.PageNo())), "", 0, "C", false, 0, "")
	})
	// Widths of the table's columns: date, order, commission, status, amount.
	cols := []float64{28, 72, 28, 26, 36}
	header := func() {
		pdf.SetFont("Helvetica", "B", 9)
		pdf.SetFillColor(235, 235, 235)
		for i, h := range []string{"Order date", "Order", "Commission", "Status", "Amount (" + cur.Code + ")"} {
			align := "L"
			if i == len(cols)-1 {
				align = "R"
			}
			pdf.CellFormat(cols[i], 7, h, "B", 0, align, true, 0, "")
		}
		pdf.Ln(-1)
		pdf.SetFont("Helvetica", "", 9)
	}
	pdf.SetHeaderFunc(func() {
		if pdf.PageNo() > 1 {
			header()
		}
	})
	pdf.AddPage()

	pdf.SetFont("Helvetica", "B", 16)
	pdf.CellFormat(0, 9, "Payout statement", "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	pdf.CellFormat(0, 6, tr(workspace), "", 1, "L", false, 0, "")
	pdf.Ln(3)

	line := func(label, value string) {
		pdf.SetFont("Helvetica", "B", 10)
		pdf.CellFormat(42, 6, label, "", 0, "L", false, 0, "")
		pdf.SetFont("Helvetica", "", 10)
		pdf.CellFormat(0, 6, tr(value), "", 1, "L", false, 0, "")
	}
	if a := po.Affiliate; a != nil {
		line("Affiliate", fmt.Sprintf("%s <%s> (id %d)", a.Name, a.Email, a.ID))
	}
	line("Payout", fmt.Sprintf("%d", po.ID))
	line("Status", po.Status)
	line("Created", day(po.CreatedAt))
	if po.CompletedAt != nil {
		line("Completed", day(*po.CompletedAt))
	}
	if po.FailedAt != nil {
		line("Failed", day(*po.FailedAt))
	}
	if po.ExternalReference != "" {
		line("Reference", po.ExternalReference)
	}
	line("Amount", amt(po.Amount)+" "+cur.Code)
	pdf.Ln(4)

	header()
	var subtotal int64
	for _, it := range po.Items {
		c := it.Commission
		subtotal += it.Amount
		var tier string
		if c.Tier > 1 {
			tier = fmt.Sprintf(" (tier %d)", c.Tier)
		}
		ref := fitText(pdf, tr, c.OrderRef, cols[1]-2-pdf.GetStringWidth(tier)) + tier
		pdf.CellFormat(cols[0], 6, day(it.OrderDate), "", 0, "L", false, 0, "")
		pdf.CellFormat(cols[1], 6, tr(ref), "", 0, "L", false, 0, "")
		pdf.CellFormat(cols[2], 6, fmt.Sprintf("%d", c.ID), "", 0, "L", false, 0, "")
		pdf.CellFormat(cols[3], 6, c.Status, "", 0, "L", false, 0, "")
		pdf.CellFormat(cols[4], 6, amt(it.Amount), "", 1, "R", false, 0, "")
	}
	if len(po.Items) == 0 {
		pdf.CellFormat(0, 6, "No commission is itemised in this payout.", "", 1, "L", false, 0, "")
	}
	pdf.Ln(2)

	total := func(label, value string, bold bool) {
		style := ""
		if bold {
			style = "B"
		}
		pdf.SetFont("Helvetica", style, 10)
		pdf.CellFormat(cols[0]+cols[1]+cols[2]+cols[3], 7, label, "T", 0, "R", false, 0, "")
		pdf.CellFormat(cols[4], 7, value, "T", 1, "R", false, 0, "")
	}
	total("Commissions", amt(subtotal), false)
	if other := po.Amount - subtotal; other != 0 {
		// A payout may also settle adjustments, or net off a reversal of
		// commission paid earlier; the ledger explains it entry by entry.
		total("Other balance (adjustments, reversals)", amt(other), false)
	}
	total("Total "+cur.Code, amt(po.Amount), true)

	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// fitText cuts s (UTF-8) so that it fits width w, with an ellipsis.
func fitText(pdf *fpdf.Fpdf, tr func(string) string, s string, w float64) string {
	if pdf.GetStringWidth(tr(s)) <= w {
		return s
	}
	r := []rune(s)
	for len(r) > 0 && pdf.GetStringWidth(tr(string(r)+"...")) > w {
		r = r[:len(r)-1]
	}
	return string(r) + "..."
}
