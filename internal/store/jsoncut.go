package store

import (
	"bytes"
	"errors"
)

// Cutting JSON that encoding/json wrote into its parts without decoding it.
// The conversion's audit entry and events are cut from one marshalled
// snapshot (recordConversionChange); decoding that snapshot into a map of raw
// values, then its commissions into a slice, took a twentieth of the SQLite
// writer's time, which every conversion waits for. encoding/json writes
// compact, valid JSON, so finding where each value ends is enough.

var errJSONCut = errors.New("jsoncut: not compact JSON as encoding/json writes it")

// jsonMember is one member of a JSON object: its key (plain, without escapes)
// and its value's bytes.
type jsonMember struct {
	key   string
	value []byte
}

// jsonMembers appends the members of the JSON object data to out.
func jsonMembers(data []byte, out []jsonMember) ([]jsonMember, error) {
	n := len(data)
	if n < 2 || data[0] != '{' || data[n-1] != '}' {
		return out, errJSONCut
	}
	for i := 1; i < n-1; {
		if data[i] != '"' {
			return out, errJSONCut
		}
		k, err := jsonValueEnd(data, i)
		if err != nil || k >= n-1 || data[k] != ':' {
			return out, errJSONCut
		}
		key := data[i+1 : k-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return out, errJSONCut
		}
		e, err := jsonValueEnd(data, k+1)
		if err != nil || e > n-1 {
			return out, errJSONCut
		}
		out = append(out, jsonMember{key: string(key), value: data[k+1 : e]})
		if i = e; i < n-1 {
			if data[i] != ',' || i+1 == n-1 {
				return out, errJSONCut
			}
			i++
		}
	}
	return out, nil
}

// jsonElements appends the elements of the JSON array data to out; null is
// an empty array.
func jsonElements(data []byte, out [][]byte) ([][]byte, error) {
	if string(data) == "null" {
		return out, nil
	}
	n := len(data)
	if n < 2 || data[0] != '[' || data[n-1] != ']' {
		return out, errJSONCut
	}
	for i := 1; i < n-1; {
		e, err := jsonValueEnd(data, i)
		if err != nil || e > n-1 {
			return out, errJSONCut
		}
		out = append(out, data[i:e])
		if i = e; i < n-1 {
			if data[i] != ',' || i+1 == n-1 {
				return out, errJSONCut
			}
			i++
		}
	}
	return out, nil
}

// jsonValueEnd returns the index just after the value that starts at data[i].
func jsonValueEnd(data []byte, i int) (int, error) {
	if i >= len(data) {
		return 0, errJSONCut
	}
	switch data[i] {
	case '"':
		for j := i + 1; j < len(data); j++ {
			switch data[j] {
			case '\\':
				j++ // the escaped byte: a quote or a backslash does not end the string
			case '"':
				return j + 1, nil
			}
		}
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				e, err := jsonValueEnd(data, j)
				if err != nil {
					return 0, err
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1, nil
				}
			}
		}
	case ',', ':', '}', ']':
	default: // a number, true, false or null
		j := i
		for j < len(data) && (data[j] >= '0' && data[j] <= '9' || data[j] >= 'a' && data[j] <= 'z' ||
			data[j] == '-' || data[j] == '+' || data[j] == '.' || data[j] == 'E') {
			j++
		}
		if j > i {
			return j, nil
		}
	}
	return 0, errJSONCut
}
