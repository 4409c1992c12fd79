package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// parallel runs fn over items with at most n at once and joins the errors
// (at most 10 are kept, plus a count).
func parallel[T any](ctx context.Context, n int, items []T, fn func(context.Context, T) error) error {
	if len(items) == 1 {
		return fn(ctx, items[0])
	}
	var (
		mu     sync.Mutex
		errs   []error
		failed int
		wg     sync.WaitGroup
	)
	sem := make(chan struct{}, n)
	for _, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, it); err != nil {
				mu.Lock()
				failed++
				if len(errs) < 10 {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed > len(errs) {
		errs = append(errs, fmt.Errorf("and %d more errors", failed-len(errs)))
	}
	return errors.Join(errs...)
}
