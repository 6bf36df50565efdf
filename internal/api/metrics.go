package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/track"
)

// metrics holds the Prometheus collectors of one server. A registry per server
// keeps tests independent.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "heldsway_http_requests_total",
			Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "heldsway_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern, method and status.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method", "status"}),
	}
	m.reg.MustRegister(m.requests, m.duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// trackStats exports the redirect's counters: clicks per batch (clicks ÷
// batches) is the group commit's batch size, the figure to watch when the
// redirect's latency grows.
func (m *metrics) trackStats(stats func() track.Stats) {
	counter := func(name, help string, v func(track.Stats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v(stats())) })
	}
	m.reg.MustRegister(
		counter("heldsway_clicks_recorded_total", "Clicks recorded by the redirect and the storefront click endpoint.",
			func(s track.Stats) int64 { return s.Counted }),
		counter("heldsway_click_batches_total", "Transactions the click writer committed (group commit).",
			func(s track.Stats) int64 { return s.Batches }),
		counter("heldsway_click_repeats_total", "Redirects answered with an earlier click (the same visitor within 30 s).",
			func(s track.Stats) int64 { return s.Repeats }),
		counter("heldsway_click_bots_total", "Redirects of known bots, not recorded.",
			func(s track.Stats) int64 { return s.Bots }))
}

// conversionStats exports the conversion writers' counters:
// conversions per batch is its group commit's batch size; reruns and
// conversions retried alone count the batches a conversion spoiled.
func (m *metrics) conversionStats(stats func() store.ConversionWriterStats) {
	counter := func(name, help string, v func(store.ConversionWriterStats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v(stats())) })
	}
	m.reg.MustRegister(
		counter("heldsway_conversion_writer_conversions_total", "Conversions answered by the conversion writers (group commit).",
			func(s store.ConversionWriterStats) int64 { return s.Conversions }),
		counter("heldsway_conversion_writer_batches_total", "Transactions the conversion writers committed.",
			func(s store.ConversionWriterStats) int64 { return s.Batches }),
		counter("heldsway_conversion_writer_reruns_total", "Batches run again without a conversion that failed them.",
			func(s store.ConversionWriterStats) int64 { return s.Reruns }),
		counter("heldsway_conversion_writer_alone_total", "Conversions retried in a transaction of their own after their batch failed.",
			func(s store.ConversionWriterStats) int64 { return s.Alone }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "heldsway_conversion_writer_busy_seconds_total",
			Help: "Time the conversion writers spent recording batches, summed; its rate is their utilisation (SQLite has one writer, saturated at 1; PostgreSQL four)."},
			func() float64 { return stats().Busy.Seconds() }))
}

// clickJournalStats exports SQLite's click journal: the clicks acknowledged
// and not yet in the database, and those the database refused.
func (m *metrics) clickJournalStats(stats func() store.ClickJournalStats) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "heldsway_click_journal_pending",
			Help: "Clicks acknowledged through the SQLite click journal and not yet stored in the database."},
			func() float64 { return float64(stats().Pending) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "heldsway_click_journal_dropped_total",
			Help: "Journaled clicks the database refused at ingestion (expected 0)."},
			func() float64 { return float64(stats().Dropped) }))
}

func (m *metrics) observe(route, method string, status int, d time.Duration) {
	st := strconv.Itoa(status)
	m.requests.WithLabelValues(route, method, st).Inc()
	m.duration.WithLabelValues(route, method, st).Observe(d.Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
