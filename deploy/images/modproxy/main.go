// Command modproxy serves a Go module download cache (GOMODCACHE/cache/download,
// which has the layout of a module proxy) over HTTP on a loopback address, so
// that an image build without registry access fetches the modules this
// machine already has. It writes its address to --addr-file and serves until
// it is signalled.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "modproxy:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := pflag.String("dir", "", "module download cache to serve (GOMODCACHE/cache/download)")
	listen := pflag.String("listen", "127.0.0.1:0", "address to serve on")
	addrFile := pflag.String("addr-file", "", "file the served address is written to")
	pflag.Parse()
	if *dir == "" || *addrFile == "" {
		return errors.New("--dir and --addr-file are required")
	}
	if st, err := os.Stat(*dir); err != nil || !st.IsDir() {
		return fmt.Errorf("module cache %s: not a folder (%v)", *dir, err)
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *listen, err)
	}
	if err := os.WriteFile(*addrFile, []byte(lis.Addr().String()+"\n"), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", *addrFile, err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(*dir)), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", *dir, err)
	}
	return nil
}
