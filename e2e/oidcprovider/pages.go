package main

import (
	"context"
	"html/template"
	"net/http"
)

// pages are the provider's own forms: sign-in for the authorization code
// flow, and the user-code form of the device flow.
type pages struct {
	st       *storage
	callback func(ctx context.Context, requestID string) string
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><title>Test provider: sign in</title></head><body>
<h1>Sign in</h1>
{{if .Error}}<p id="error">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
{{if .ID}}<input type="hidden" name="authRequestID" value="{{.ID}}">{{end}}
{{if .Device}}<label>Code <input id="user_code" name="user_code" value="{{.UserCode}}"></label>{{end}}
<label>Username <input id="username" name="username"></label>
<label>Password <input id="password" name="password" type="password"></label>
<button id="submit" type="submit">Sign in</button>
</form>
{{if .Done}}<p id="done">Signed in; you may close this page.</p>{{end}}
</body></html>
`))

type pageData struct {
	Action, ID, UserCode, Error string
	Device, Done                bool
}

func (p *pages) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := r.Form.Get("authRequestID")
	if r.Method != http.MethodPost {
		_ = loginPage.Execute(w, pageData{Action: "/login", ID: id})
		return
	}
	u, ok := p.st.checkPassword(r.PostForm.Get("username"), r.PostForm.Get("password"))
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		_ = loginPage.Execute(w, pageData{Action: "/login", ID: id, Error: "wrong username or password"})
		return
	}
	if err := p.st.completeLogin(id, u); err != nil {
		http.Error(w, "unknown sign-in request", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, p.callback(r.Context(), id), http.StatusFound)
}

func (p *pages) device(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	code := r.Form.Get("user_code")
	if r.Method != http.MethodPost {
		_ = loginPage.Execute(w, pageData{Action: "/device", Device: true, UserCode: code})
		return
	}
	u, ok := p.st.checkPassword(r.PostForm.Get("username"), r.PostForm.Get("password"))
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		_ = loginPage.Execute(w, pageData{Action: "/device", Device: true, UserCode: code, Error: "wrong username or password"})
		return
	}
	if err := p.st.completeDevice(code, u); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_ = loginPage.Execute(w, pageData{Action: "/device", Device: true, Error: "unknown or expired code"})
		return
	}
	_ = loginPage.Execute(w, pageData{Action: "/device", Device: true, Done: true})
}
