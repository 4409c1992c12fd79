package inventory

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"
)

// gzipJSON reuses pooled writers: its output is the same bytes a fresh
// BestSpeed writer makes, from any goroutine, and reads back.
func TestGzipJSONPooled(t *testing.T) {
	fresh := func(v any) []byte {
		b, _ := json.Marshal(v)
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		_, _ = zw.Write(b)
		_ = zw.Close()
		return buf.Bytes()
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				v := map[string]any{"g": g, "i": i, "data": bytes.Repeat([]byte{byte('a' + i%26)}, i*100)}
				got, err := gzipJSON(v)
				if err != nil {
					t.Error(err)
					return
				}
				if want := fresh(v); !bytes.Equal(got, want) {
					t.Errorf("g%d i%d: pooled output differs from a fresh writer's", g, i)
					return
				}
				var back map[string]any
				if err := gunzipJSON(got, &back); err != nil {
					t.Error(err)
					return
				}
				if fmt.Sprint(back["i"]) != fmt.Sprint(i) || !reflect.DeepEqual(back["g"], float64(g)) {
					t.Errorf("round trip: %v", back)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkGzipJSON(b *testing.B) {
	v := map[string]any{"objects": bytes.Repeat([]byte("x"), 2000)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := gzipJSON(v); err != nil {
			b.Fatal(err)
		}
	}
}
