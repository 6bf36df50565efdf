// Command bare is the baseline for bench/auth.sh: a plain net/http handler that
// writes a small JSON body, so the benchmark can say how much of the machine's
// HTTP throughput HeldSway's middleware, auth and store leave over.
package main

import (
	"flag"
	"log"
	"net/http"
)

var body = []byte(`{"success":true,"data":{"workspace":"x","plan":"basic"}}`)

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "listen address")
	flag.Parse()
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*addr, h))
}
