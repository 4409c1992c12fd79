package cli

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// errNoBrowser is wrapped when no browser can be launched here; the
// caller then falls back to the device flow.
var errNoBrowser = errors.New("no browser can be opened here")

// browserTimeout bounds how long the CLI waits for the person to sign in
// in the browser.
const browserTimeout = 5 * time.Minute

// browserLogin signs in with the authorization code flow in the person's
// browser: a listener on 127.0.0.1 (a random port) receives the
// provider's redirect (RFC 8252's loopback redirect for native apps); the
// request carries a fresh state, nonce and PKCE S256 challenge. A
// redirect whose state is not this sign-in's is refused and the CLI keeps
// waiting. It returns the ID token.
func browserLogin(ctx context.Context, cfg *oauth2.Config, stderr io.Writer) (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("%w: loopback listener: %v", errNoBrowser, err)
	}
	defer lis.Close()
	c := *cfg
	c.RedirectURL = "http://" + lis.Addr().String() + "/callback"
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	authURL := c.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", nonce))

	type result struct {
		idToken string
		err     error
	}
	done := make(chan result, 1)
	finish := func(r result) {
		select {
		case done <- r:
		default: // already finished
		}
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			callbackPage(w, http.StatusBadRequest, "This sign-in was not started by this flotilla login; it was ignored.")
			return
		}
		if e := q.Get("error"); e != "" {
			callbackPage(w, http.StatusUnauthorized, "The provider refused the sign-in: "+e+" "+q.Get("error_description"))
			finish(result{err: fmt.Errorf("the provider refused the sign-in: %s %s", e, q.Get("error_description"))})
			return
		}
		tok, err := c.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			callbackPage(w, http.StatusUnauthorized, "The provider did not accept the sign-in's code; run flotilla login --sso again.")
			finish(result{err: fmt.Errorf("code exchange at %s: %w", c.Endpoint.TokenURL, err)})
			return
		}
		idToken, err := idTokenOf(tok)
		if err == nil {
			err = checkNonce(idToken, nonce)
		}
		if err != nil {
			callbackPage(w, http.StatusUnauthorized, "The sign-in did not complete: "+err.Error())
			finish(result{err: err})
			return
		}
		callbackPage(w, http.StatusOK, "Signed in; you may close this tab and go back to the terminal.")
		finish(result{idToken: idToken})
	})}
	go func() { _ = srv.Serve(lis) }()
	// Shutdown, not Close: the callback's handler hands over the result
	// before its page is flushed; Close would cut the page off (the
	// browser showed a reset connection instead of "Signed in").
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
	}()

	if err := openBrowser(authURL); err != nil {
		return "", err
	}
	fmt.Fprintf(stderr, "Opened the provider's sign-in page in your browser; if it did not open, visit:\n  %s\n", authURL)
	fmt.Fprintln(stderr, "Waiting for the sign-in...")
	wctx, cancel := context.WithTimeout(ctx, browserTimeout)
	defer cancel()
	select {
	case r := <-done:
		return r.idToken, r.err
	case <-wctx.Done():
		return "", fmt.Errorf("the browser sign-in did not complete: %w (use --sso-device to sign in with a code)", context.Cause(wctx))
	}
}

// openBrowser starts the person's browser on u: $BROWSER (a command, the
// first of a colon-separated list, as xdg-open reads it), else the
// desktop's opener. Without either, or when it cannot be started, the
// error wraps errNoBrowser.
func openBrowser(u string) error {
	var cmd *exec.Cmd
	browser, _, _ := strings.Cut(os.Getenv("BROWSER"), ":")
	switch {
	case strings.TrimSpace(browser) != "":
		f := strings.Fields(browser)
		cmd = exec.Command(f[0], append(f[1:], u)...)
	case runtime.GOOS == "darwin":
		cmd = exec.Command("open", u)
	case runtime.GOOS == "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	case os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "":
		return fmt.Errorf("%w (no $BROWSER and no graphical session)", errNoBrowser)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%w: %s: %v", errNoBrowser, cmd.Path, err)
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

// checkNonce binds the ID token to this sign-in: its nonce claim must be
// the one sent. (The hub verifies the token's signature, issuer, audience
// and expiry when the CLI trades it.)
func checkNonce(idToken, nonce string) error {
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		return errors.New("the provider's ID token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fmt.Errorf("the provider's ID token: %w", err)
	}
	var claims struct {
		Nonce string `json:"nonce"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return fmt.Errorf("the provider's ID token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(claims.Nonce), []byte(nonce)) != 1 {
		return errors.New("the ID token's nonce is not this sign-in's")
	}
	return nil
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

var callbackTmpl = template.Must(template.New("callback").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>flotilla login</title></head>
<body><p id="flotilla-login">{{.}}</p></body></html>
`))

func callbackPage(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = callbackTmpl.Execute(w, msg)
}
