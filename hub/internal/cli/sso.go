package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// loginSSO signs in through the hub's OpenID Connect provider, as `argocd
// login --sso` does: the provider's sign-in page opens in the person's
// browser and redirects back to a loopback listener of the CLI
// (authorization code with PKCE, state checked). With --sso-device, or
// when no browser can be launched, it uses the device authorization grant
// instead: the provider shows a code, the person enters it at the
// provider's page (in any browser, on any device). Either way the ID token
// the CLI receives is traded at the hub for a session token, saved like a
// token given to `flotilla login`.
func loginSSO(ctx context.Context, c *client, f flags, w, stderr io.Writer) error {
	if f.server == "" {
		return usageError{"login --sso needs --server"}
	}
	if insecureRemote(f.server) {
		fmt.Fprintf(stderr, "WARNING: %s is plain http to another host: the session token travels unencrypted; use https\n", f.server)
	}
	anon := *c
	anon.token = ""
	var info api.SSOInfo
	if err := anon.do(ctx, "GET", "/auth/info", nil, &info); err != nil {
		return fmt.Errorf("login --sso: %w", err)
	}
	if !info.Enabled {
		return fmt.Errorf("login --sso: the hub at %s has no single sign-on; use --token", f.server)
	}
	if info.CLIClientID == "" || (info.DeviceAuthorizationEndpoint == "" && info.AuthorizationEndpoint == "") {
		return fmt.Errorf("login --sso: the hub at %s offers no CLI sign-in (its provider %s has no authorization endpoint, or the hub no --oidc-cli-client-id)", f.server, info.Issuer)
	}
	cfg := &oauth2.Config{
		ClientID: info.CLIClientID,
		Endpoint: oauth2.Endpoint{
			AuthURL: info.AuthorizationEndpoint, DeviceAuthURL: info.DeviceAuthorizationEndpoint,
			TokenURL: info.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams,
		},
		Scopes: append([]string{"openid"}, info.Scopes...),
	}
	octx := context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: 30 * time.Second})
	var idToken string
	var err error
	device := f.ssoDevice || info.AuthorizationEndpoint == ""
	if !device {
		idToken, err = browserLogin(octx, cfg, stderr)
		if errors.Is(err, errNoBrowser) {
			if info.DeviceAuthorizationEndpoint == "" {
				return fmt.Errorf("login --sso: %w, and the provider %s offers no device sign-in", err, info.Issuer)
			}
			fmt.Fprintf(stderr, "%v; signing in with a device code instead\n", err)
			device = true
		}
	}
	if device {
		idToken, err = deviceLogin(octx, cfg, info, stderr)
	}
	if err != nil {
		return fmt.Errorf("login --sso: %w", err)
	}
	var sess api.CLILoginResponse
	if err := anon.do(ctx, "POST", "/auth/cli", api.CLILoginRequest{IDToken: idToken}, &sess); err != nil {
		return fmt.Errorf("login --sso: %w", err)
	}
	if err := saveConfig(Config{Server: f.server, Token: sess.Token}); err != nil {
		return fmt.Errorf("login --sso: save %s: %w", ConfigPath(), err)
	}
	role := sess.Role
	if len(sess.Projects) > 0 {
		role += " of " + strings.Join(sess.Projects, ", ")
	}
	fmt.Fprintf(w, "Logged in to %s as %s (%s) until %s; saved in %s\n", f.server, sess.Name, role, sess.ExpiresAt.Local().Format(time.RFC3339), ConfigPath())
	return nil
}

// deviceLogin runs the device authorization grant and returns the ID
// token.
func deviceLogin(ctx context.Context, cfg *oauth2.Config, info api.SSOInfo, stderr io.Writer) (string, error) {
	if info.DeviceAuthorizationEndpoint == "" {
		return "", fmt.Errorf("the provider %s has no device authorization endpoint; sign in without --sso-device", info.Issuer)
	}
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return "", fmt.Errorf("device authorization at %s: %w", info.DeviceAuthorizationEndpoint, err)
	}
	fmt.Fprintf(stderr, "To sign in, open %s and enter the code %s\n", da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(stderr, "(or open %s)\n", da.VerificationURIComplete)
	}
	fmt.Fprintln(stderr, "Waiting for the sign-in...")
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode != "" {
			return "", fmt.Errorf("the provider ended the sign-in: %s %s", re.ErrorCode, re.ErrorDescription)
		}
		return "", err
	}
	return idTokenOf(tok)
}

func idTokenOf(tok *oauth2.Token) (string, error) {
	idToken, _ := tok.Extra("id_token").(string)
	if idToken == "" {
		return "", errors.New("the provider sent no ID token (is the openid scope allowed for the CLI's client?)")
	}
	return idToken, nil
}
