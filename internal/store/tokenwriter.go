package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// maxTokenBatch bounds one group commit: 256 rows × 6 parameters stays far
// below either engine's parameter limit.
const maxTokenBatch = 256

// tokenBatchTimeout bounds one group commit, independently of any one caller.
const tokenBatchTimeout = 10 * time.Second

// errStoreClosed answers inserts queued after Close: a shutting-down node is
// unavailable, and the client may retry on another.
var errStoreClosed = &heldsway.Error{Code: heldsway.EUNAVAILABLE,
	Message: "The service is temporarily unavailable. Please retry.", Err: errors.New("store: closed")}

// tokenWriter is a group-commit writer for issued access tokens. The token
// exchange is the one write on a hot path; on SQLite every write funnels through
// one connection, so a transaction per token (BEGIN, parse, INSERT, COMMIT)
// serialises the exchange. Callers queue their row and wait; one goroutine takes
// everything queued while the previous commit ran and inserts it in one
// transaction (see insertTokens). There is no timer: a lone request is written
// at once, and batches grow only with concurrency. A caller is answered only
// after its batch has committed, so an issued token is always stored.
type tokenWriter struct {
	s    *Store
	reqs chan *tokenReq
	quit chan struct{}
	done chan struct{}
	once sync.Once
	stmt *sql.Stmt // SQLite: the prepared single-row INSERT, used only by run
}

type tokenReq struct {
	t   *heldsway.AccessToken
	err chan error // buffered: the writer never blocks on a caller that left
}

func newTokenWriter(s *Store) *tokenWriter {
	w := &tokenWriter{s: s, reqs: make(chan *tokenReq, maxTokenBatch),
		quit: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// insert queues t and waits until it is committed (or the batch failed).
func (w *tokenWriter) insert(ctx context.Context, t *heldsway.AccessToken) error {
	r := &tokenReq{t: t, err: make(chan error, 1)}
	select {
	case w.reqs <- r:
	case <-w.quit:
		return errStoreClosed
	case <-ctx.Done():
		return unavailable(ctx.Err())
	}
	select {
	case err := <-r.err:
		return err
	case <-w.done:
		// The writer stopped; it may have answered r on its way out.
		select {
		case err := <-r.err:
			return err
		default:
			return errStoreClosed
		}
	case <-ctx.Done():
		// The row may still be committed; nobody holds its token, so it is inert.
		return unavailable(ctx.Err())
	}
}

func (w *tokenWriter) run() {
	defer close(w.done)
	batch := make([]*tokenReq, 0, maxTokenBatch)
	for {
		select {
		case r := <-w.reqs:
			batch = append(batch[:0], r)
		case <-w.quit:
			// Answer anything still queued rather than leave callers waiting.
			for {
				select {
				case r := <-w.reqs:
					r.err <- errStoreClosed
				default:
					return
				}
			}
		}
	drain:
		for len(batch) < maxTokenBatch {
			select {
			case r := <-w.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		w.flush(batch)
		clear(batch) // let the tokens be collected
	}
}

// flush commits batch in one transaction and answers every caller. If the batch
// fails, each row is retried on its own, so one bad row cannot fail the others.
func (w *tokenWriter) flush(batch []*tokenReq) {
	ctx, cancel := context.WithTimeout(context.Background(), tokenBatchTimeout)
	defer cancel()
	if !w.s.Dialect.IsPostgres() && w.stmt == nil {
		// Prepared outside any transaction: the transaction holds SQLite's one
		// writer connection, so preparing inside it would wait for itself.
		st, err := w.s.w.PrepareContext(ctx, insertTokenSQL)
		if err != nil {
			for _, r := range batch {
				r.err <- unavailable(err)
			}
			return
		}
		w.stmt = st
	}
	err := w.s.tx(ctx, func(tx *sql.Tx) error { return w.insertTokens(ctx, tx, batch) })
	if err != nil && len(batch) > 1 {
		for _, r := range batch {
			r.err <- w.s.tx(ctx, func(tx *sql.Tx) error { return w.insertTokens(ctx, tx, []*tokenReq{r}) })
		}
		return
	}
	for _, r := range batch {
		r.err <- err
	}
}

const tokenCols = 6

const insertTokenSQL = `INSERT INTO access_tokens
	(token_hash, workspace_id, api_key_id, scopes, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)`

// insertTokens writes batch inside tx. On SQLite it runs one prepared single-row
// INSERT per token: no SQL is parsed per batch, and a single-row INSERT needs no
// statement journal, which a multi-row INSERT inside a transaction writes to a
// temporary file. On PostgreSQL one multi-row INSERT saves a round trip per row.
func (w *tokenWriter) insertTokens(ctx context.Context, tx *sql.Tx, batch []*tokenReq) error {
	if !w.s.Dialect.IsPostgres() {
		st := tx.StmtContext(ctx, w.stmt) // the writer's one connection has it prepared
		defer st.Close()
		for _, r := range batch {
			t := r.t
			if _, err := st.ExecContext(ctx, t.Hash, t.WorkspaceID, t.APIKeyID, joinList(t.Scopes),
				ts(t.ExpiresAt), ts(t.CreatedAt)); err != nil {
				return err
			}
		}
		return nil
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO access_tokens
		(token_hash, workspace_id, api_key_id, scopes, expires_at, created_at) VALUES `)
	args := make([]any, 0, len(batch)*tokenCols)
	for i, r := range batch {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteByte('(')
		for j := 1; j <= tokenCols; j++ {
			if j > 1 {
				q.WriteByte(',')
			}
			q.WriteByte('$')
			q.WriteString(strconv.Itoa(i*tokenCols + j))
		}
		q.WriteByte(')')
		t := r.t
		args = append(args, t.Hash, t.WorkspaceID, t.APIKeyID, joinList(t.Scopes), ts(t.ExpiresAt), ts(t.CreatedAt))
	}
	_, err := tx.ExecContext(ctx, q.String(), args...)
	return err
}

// close stops the writer after answering what is queued; later inserts fail.
func (w *tokenWriter) close() {
	w.once.Do(func() { close(w.quit) })
	<-w.done
	if w.stmt != nil {
		w.stmt.Close()
	}
}
