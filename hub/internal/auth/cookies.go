package auth

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"time"
)

// Cookie and header names. The session cookie holds a session's bearer
// secret and is HttpOnly; the CSRF cookie is readable by the UI's script,
// which echoes it in CSRFHeader on every request that changes state
// (double submit: another site can neither read it nor set the header).
const (
	SessionCookieName = "flotilla_session"
	CSRFCookieName    = "flotilla_csrf"
	CSRFHeader        = "X-Flotilla-CSRF"
	// loginCookieName holds one sign-in's state, nonce and PKCE verifier
	// between /auth/login and /auth/callback.
	loginCookieName = "flotilla_login"
)

// ErrCSRF: a browser request that changes state came from another site or
// without the CSRF token.
var ErrCSRF = errors.New("cross-site request refused: a browser session may change state only from the hub's own pages")

var crossOrigin = http.NewCrossOriginProtection()

// SessionCookie returns the session secret r carries in its cookie, or "".
func SessionCookie(r *http.Request) string {
	c, err := r.Cookie(SessionCookieName)
	if err != nil {
		return ""
	}
	return c.Value
}

// CheckCSRF checks a request authenticated by the session cookie: a safe
// method (GET, HEAD, OPTIONS) passes; any other must come from the hub's
// own origin (Sec-Fetch-Site, else Origin, as net/http's
// CrossOriginProtection checks) and carry CSRFHeader equal to the CSRF
// cookie. Bearer-token calls are not cookie-authenticated and are not
// checked.
func CheckCSRF(r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if err := crossOrigin.Check(r); err != nil {
		return ErrCSRF
	}
	c, err := r.Cookie(CSRFCookieName)
	h := r.Header.Get(CSRFHeader)
	if err != nil || c.Value == "" || h == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(h)) != 1 {
		return ErrCSRF
	}
	return nil
}

// setSession sets the session and CSRF cookies for a session that ends at
// expires.
func setSession(w http.ResponseWriter, raw, csrf string, expires time.Time, secure bool) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookieName, Value: raw, Path: "/", Expires: expires,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode,
	})
	http.SetCookie(w, &http.Cookie{
		Name: CSRFCookieName, Value: csrf, Path: "/", Expires: expires,
		Secure: secure, SameSite: http.SameSiteStrictMode,
	})
}

// ClearSession removes the session, CSRF and refresh cookies.
func ClearSession(w http.ResponseWriter, secure bool) {
	for _, n := range []string{SessionCookieName, CSRFCookieName, refreshCookieName} {
		http.SetCookie(w, &http.Cookie{Name: n, Value: "", Path: "/", MaxAge: -1, HttpOnly: n != CSRFCookieName, Secure: secure, SameSite: http.SameSiteStrictMode})
	}
}
