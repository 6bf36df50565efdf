package track

import (
	"net/http"
	"strconv"
)

// The two pages a visitor of /r/{slug} can see besides the destination. They
// are static: nothing from the request is echoed, so there is nothing to escape.

const pageStyle = `body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;` +
	`background:#f5f6f8;color:#1f2933;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}` +
	`main{background:#fff;max-width:26rem;margin:1rem;padding:2.25rem 2.5rem;border-radius:12px;` +
	`box-shadow:0 1px 3px rgba(15,23,42,.08),0 8px 24px rgba(15,23,42,.06);text-align:center}` +
	`h1{font-size:1.35rem;margin:0 0 .5rem}p{margin:0;color:#52606d}`

func page(title, text string) []byte {
	return []byte(`<!doctype html><html lang="en"><head><meta charset="utf-8">` +
		`<meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">` +
		`<title>` + title + `</title><style>` + pageStyle + `</style></head>` +
		`<body><main><h1>` + title + `</h1><p>` + text + `</p></main></body></html>`)
}

var (
	notFoundPage    = page("Link not found", "This referral link does not exist or is no longer available.")
	unavailablePage = page("Please try again", "This link is temporarily unavailable. Please try again in a moment.")
)

func writePage(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// NotFound writes the 404 page of an unknown referral link.
func NotFound(w http.ResponseWriter, _ *http.Request) {
	writePage(w, http.StatusNotFound, notFoundPage)
}

// Unavailable writes the 503 page shown when a click cannot be recorded; the
// click was not acknowledged, so the visitor's retry is safe.
func Unavailable(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Retry-After", "1")
	writePage(w, http.StatusServiceUnavailable, unavailablePage)
}
