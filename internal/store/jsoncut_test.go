package store

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// The cutter must agree with encoding/json's own decoding on anything
// encoding/json writes: strings with escaped quotes, backslashes, brackets and
// braces, nested values, empty ones, numbers, literals.
func TestJSONCutAgreesWithDecoding(t *testing.T) {
	t.Parallel()
	values := []any{
		map[string]any{},
		map[string]any{"a": 1},
		map[string]any{"a": `he said "}]{["`, "b": `back\slash\`, "c": "\\\"", "d": "<&>\u2028é\x01"},
		map[string]any{"n": nil, "t": true, "f": false, "x": -1.5e-7, "i": 12345678901234, "z": 0},
		map[string]any{"o": map[string]any{"p": []any{1, "]", map[string]any{"q": "}"}}, "e": map[string]any{}},
			"l": []any{}, "m": []any{[]any{}, []any{nil}}},
		struct {
			A json.Number  `json:"amount"`
			B *json.Number `json:"rate"`
			C []string     `json:"flags"`
			D *string      `json:"click_id"`
		}{A: "12.50", C: []string{"a,b", `"q"`}},
	}
	for i, v := range values {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		got, err := jsonMembers(data, nil)
		if err != nil {
			t.Fatalf("%d %s: %v", i, data, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%d %s: %d members, want %d", i, data, len(got), len(want))
		}
		for _, m := range got {
			if !bytes.Equal(m.value, want[m.key]) {
				t.Fatalf("%d %s: %q = %s, want %s", i, data, m.key, m.value, want[m.key])
			}
		}
		for k, raw := range want {
			var wantEl []json.RawMessage
			if json.Unmarshal(raw, &wantEl) != nil {
				continue // not an array
			}
			gotEl, err := jsonElements(raw, nil)
			if err != nil || len(gotEl) != len(wantEl) {
				t.Fatalf("%d %s: %d elements (%v), want %d", i, k, len(gotEl), err, len(wantEl))
			}
			for j := range gotEl {
				if !bytes.Equal(gotEl[j], wantEl[j]) {
					t.Fatalf("%d %s[%d] = %s, want %s", i, k, j, gotEl[j], wantEl[j])
				}
			}
		}
	}
	for _, bad := range []string{``, `{`, `[]`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":"x}`, `{"a\"b":1}`, `{"a":[1}`, `{"a":1 "b":2}`} {
		if _, err := jsonMembers([]byte(bad), nil); err == nil {
			t.Fatalf("jsonMembers(%s): no error", bad)
		}
	}
	for _, bad := range []string{`{}`, `[1,]`, `[1 2]`, `["]`} {
		if _, err := jsonElements([]byte(bad), nil); err == nil {
			t.Fatalf("jsonElements(%s): no error", bad)
		}
	}
}

// creationChanges gives, byte for byte, what decoding the snapshot into a map
// of raw values and writing it back sorted gives (as it was computed before).
func TestCreationChangesAsDecoded(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	rate := int64(750)
	prog, link := int64(3), int64(4)
	o := &heldsway.Order{ID: 9, OrderID: `#A "1" \ {x}`, Status: heldsway.OrderPending, Currency: "USD", Total: 11000,
		Subtotal: 10000, CommissionAmount: 825, CommissionRate: &rate, ProgramID: &prog, LinkID: &link, ClickID: "clk",
		Attribution: heldsway.AttributionClick, Flags: []string{"self_referral"}, ConvertedAt: at, AutoApproveAt: &at,
		Affiliate: &heldsway.OrderAffiliate{ID: 5, Name: "Ann <&> \"B\"", ReferralCode: "ANN"}}
	for n := range 3 {
		o.Commissions = nil
		for i := range n {
			o.Commissions = append(o.Commissions, &heldsway.Commission{ID: int64(20 + i), OrderID: 9, OrderRef: o.OrderID,
				AffiliateID: int64(5 + i), Tier: i + 1, Currency: "USD", Amount: 750 - int64(i)*675, Rate: &rate,
				Rule: "platform_tier", BaseAmount: 10000, Explanation: `7.50% of net 100.00, "tier" [1]`, Status: "pending"})
		}
		data, err := json.Marshal(snapOrder(o))
		if err != nil {
			t.Fatal(err)
		}
		ev := []byte(`{"click_id":"clk","coupon_code":null,"referral_code":null}`)
		changes, lines, err := creationChanges(data, ev, n)
		if err != nil {
			t.Fatal(err)
		}

		var fields map[string]json.RawMessage
		if err := json.Unmarshal(data, &fields); err != nil {
			t.Fatal(err)
		}
		var wantLines []json.RawMessage
		if err := json.Unmarshal(fields["commissions"], &wantLines); err != nil {
			t.Fatal(err)
		}
		fields["evidence"] = ev
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		want := []byte{'{'}
		for i, k := range keys {
			if i > 0 {
				want = append(want, ',')
			}
			want = strconv.AppendQuote(want, k)
			want = append(want, `:{"before":null,"after":`...)
			want = append(want, fields[k]...)
			want = append(want, '}')
		}
		want = append(want, '}')
		if !bytes.Equal(changes, want) {
			t.Fatalf("%d commissions: changes\n%s\nwant\n%s", n, changes, want)
		}
		if len(lines) != n {
			t.Fatalf("%d lines, want %d", len(lines), n)
		}
		for i := range lines {
			if !bytes.Equal(lines[i], wantLines[i]) {
				t.Fatalf("line %d: %s, want %s", i, lines[i], wantLines[i])
			}
		}
		if !json.Valid(changes) {
			t.Fatalf("changes not valid JSON: %s", changes)
		}
	}
	if _, _, err := creationChanges([]byte(`{"commissions":[{"id":1}]}`), []byte(`{}`), 2); err == nil {
		t.Fatal("2 commissions expected, 1 in the snapshot: no error")
	}
}
