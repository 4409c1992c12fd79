// Command oidcprovider is a small OpenID Connect provider for Flotilla's
// single sign-on tests, run as its own process: users with passwords and
// groups, and clients, come from a JSON file. It is built on
// github.com/zitadel/oidc/v3's pkg/op (OpenID-certified), which does the
// protocol: discovery, the authorization endpoint with PKCE, the token
// endpoint (authorization code, device code), signed ID tokens and the
// published keys. This command adds only the storage (in memory), a login
// form and the device flow's user-code form.
//
// It listens on --addr (127.0.0.1:0 picks a port) over plain HTTP on
// loopback and prints "issuer URL" on stdout once it serves.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// Config is the provider's file.
type Config struct {
	Users   []User   `json:"users"`
	Clients []Client `json:"clients"`
}

// User is a person who can sign in.
type User struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	Subject  string   `json:"subject"`
	Email    string   `json:"email"`
	Groups   []string `json:"groups"`
}

// Client is a relying party: a confidential web client (Secret and
// RedirectURIs) or a public native client (Public, device flow).
type Client struct {
	ID           string   `json:"id"`
	Secret       string   `json:"secret,omitempty"`
	RedirectURIs []string `json:"redirectURIs,omitempty"`
	Public       bool     `json:"public,omitempty"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "oidcprovider:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	cfgPath := flag.String("config", "", "JSON file of users and clients")
	flag.Parse()
	b, err := os.ReadFile(*cfgPath)
	if err != nil {
		return err
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("config %s: %w", *cfgPath, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	issuer := "http://" + lis.Addr().String()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	st := newStorage(cfg, key)
	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		return err
	}
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:             cryptoKey,
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		SupportedUILocales:    []language.Tag{language.English},
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     5 * time.Minute,
			PollInterval: time.Second,
			UserFormPath: "/device",
			UserCode:     op.UserCodeBase20,
		},
	}, st, op.StaticIssuer(issuer), op.WithAllowInsecure(), op.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	if err != nil {
		return err
	}
	pages := &pages{st: st, callback: op.AuthCallbackURL(provider)}
	issuerCtx := op.NewIssuerInterceptor(provider.IssuerFromRequest)
	mux := http.NewServeMux()
	mux.Handle("/login", issuerCtx.HandlerFunc(pages.login))
	mux.Handle("/device", issuerCtx.HandlerFunc(pages.device))
	// A directory admin's change, for tests: POST /test/groups with
	// user=NAME and groups=a,b (empty: none).
	mux.HandleFunc("POST /test/groups", func(w http.ResponseWriter, r *http.Request) {
		var groups []string
		if g := r.FormValue("groups"); g != "" {
			groups = strings.Split(g, ",")
		}
		if !st.setGroups(r.FormValue("user"), groups) {
			http.Error(w, "no such user", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("/", provider.HttpHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	fmt.Printf("issuer %s\n", issuer)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
