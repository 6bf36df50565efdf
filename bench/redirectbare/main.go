// Command redirectbare is the baseline for bench/redirect.sh: a plain net/http
// handler that only sets a cookie and redirects, as issue 4 defines it, so the
// benchmark can say how much of that HeldSway's redirect keeps while it also
// resolves the link, commits the click and runs the middleware.
package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "listen address")
	flag.Parse()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "hs_ref", Value: "AAAAAAAAAAAAAAAAAAAAAA", Path: "/", MaxAge: 30 * 86400,
			HttpOnly: true, SameSite: http.SameSiteLaxMode})
		w.Header().Set("Location", "https://shop.example/p?ref=ALICE&hs_click=AAAAAAAAAAAAAAAAAAAAAA")
		w.WriteHeader(http.StatusFound)
	})
	log.Fatal(http.ListenAndServe(*addr, h))
}
