package engine

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
)

// gate is a transport whose requests wait until released; it records how
// many writes are inside at once.
type gate struct {
	mu       sync.Mutex
	in, most int
	entered  chan string
	release  chan struct{}
}

func (g *gate) RoundTrip(r *http.Request) (*http.Response, error) {
	write := r.Method != "GET"
	g.mu.Lock()
	if write {
		g.in++
		g.most = max(g.most, g.in)
	}
	g.mu.Unlock()
	g.entered <- r.Method
	<-g.release
	g.mu.Lock()
	if write {
		g.in--
	}
	g.mu.Unlock()
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
}

// At most n writes are under way at once across every transport the
// wrapper made; reads pass while the writes wait; a waiting write gives up
// with its request's context.
func TestWriteLimiter(t *testing.T) {
	const n = 3
	g := &gate{entered: make(chan string, 100), release: make(chan struct{})}
	wrap := limitWrites(n)
	rts := []http.RoundTripper{wrap(g), wrap(g)} // two clients, one budget
	do := func(rt http.RoundTripper, method string, ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, method, "http://api.invalid/x", nil)
		resp, err := rt.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	var wg sync.WaitGroup
	const writes = 10
	for i := range writes {
		wg.Go(func() { _ = do(rts[i%2], []string{"PATCH", "POST", "PUT", "DELETE"}[i%4], context.Background()) })
	}
	for range n {
		<-g.entered // n writes are in
	}
	// The rest wait; a read and a watch still get through.
	for range 2 {
		wg.Go(func() { _ = do(rts[0], "GET", context.Background()) })
	}
	for range 2 {
		if m := <-g.entered; m != "GET" {
			t.Fatalf("a %s got in while %d writes were under way", m, n)
		}
	}
	// A waiting write ends with its context.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- do(rts[1], "PATCH", ctx) }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiting write: %v", err)
	}
	close(g.release)
	wg.Wait()
	close(g.entered)
	got := 0
	for range g.entered {
		got++
	}
	if got != writes-n {
		t.Errorf("%d more requests went through, want %d", got, writes-n)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.most != n {
		t.Errorf("%d writes inside at once, want %d", g.most, n)
	}
}
