package store

import (
	"bytes"
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestJoinToken(t *testing.T) {
	tests := []struct {
		name    string
		cluster string        // whose token is presented
		token   string        // "valid", "other" (cluster b's), "superseded", "garbage", ""
		at      time.Duration // after creation
		before  []string      // consumes that happen first, of the valid token
		wantErr error
	}{
		{name: "valid", cluster: "a", token: "valid", at: time.Minute},
		{name: "valid just before expiry", cluster: "a", token: "valid", at: time.Hour - time.Nanosecond},
		{name: "at expiry", cluster: "a", token: "valid", at: time.Hour, wantErr: ErrTokenExpired},
		{name: "after expiry", cluster: "a", token: "valid", at: 2 * time.Hour, wantErr: ErrTokenExpired},
		{name: "second use", cluster: "a", token: "valid", at: time.Minute, before: []string{"a"}, wantErr: ErrTokenUsed},
		{name: "other cluster's token", cluster: "a", token: "other", at: time.Minute, wantErr: ErrTokenInvalid},
		{name: "own token for other cluster", cluster: "b", token: "valid", at: time.Minute, wantErr: ErrTokenInvalid},
		{name: "unknown cluster", cluster: "zzz", token: "valid", at: time.Minute, wantErr: ErrTokenInvalid},
		{name: "superseded token", cluster: "a", token: "superseded", at: time.Minute, wantErr: ErrTokenInvalid},
		{name: "garbage", cluster: "a", token: "garbage", at: time.Minute, wantErr: ErrTokenInvalid},
		{name: "empty", cluster: "a", token: "", at: time.Minute, wantErr: ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, s Store) {
				ctx := t.Context()
				for _, c := range []string{"a", "b"} {
					if err := s.CreateCluster(ctx, Cluster{Name: c}); err != nil {
						t.Fatal(err)
					}
				}
				superseded, err := s.CreateJoinToken(ctx, "a", time.Hour, t0)
				if err != nil {
					t.Fatal(err)
				}
				valid, err := s.CreateJoinToken(ctx, "a", time.Hour, t0)
				if err != nil {
					t.Fatal(err)
				}
				other, err := s.CreateJoinToken(ctx, "b", time.Hour, t0)
				if err != nil {
					t.Fatal(err)
				}
				raw := map[string]string{"valid": valid, "other": other, "superseded": superseded,
					"garbage": strings.Repeat("x", len(valid)), "": ""}[tt.token]
				for _, c := range tt.before {
					if err := s.ConsumeJoinToken(ctx, c, valid, t0.Add(time.Second)); err != nil {
						t.Fatalf("first consume: %v", err)
					}
				}
				now := t0.Add(tt.at)
				errIs(t, "ConsumeJoinToken", s.ConsumeJoinToken(ctx, tt.cluster, raw, now), tt.wantErr)
				if tt.wantErr != nil {
					return
				}
				got, err := s.GetJoinToken(ctx, tt.cluster)
				if err != nil {
					t.Fatal(err)
				}
				want := JoinToken{Cluster: "a", Hash: HashToken(valid), ExpiresAt: t0.Add(time.Hour), UsedAt: now}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("stored token (-want +got):\n%s", diff)
				}
			})
		})
	}
}

func TestCreateJoinTokenErrors(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		if _, err := s.CreateJoinToken(t.Context(), "nope", time.Hour, t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown cluster: err %v, want ErrNotFound", err)
		}
		if err := s.CreateCluster(t.Context(), Cluster{Name: "a"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateJoinToken(t.Context(), "a", 0, t0); !errors.Is(err, ErrInvalid) {
			t.Errorf("zero ttl: err %v, want ErrInvalid", err)
		}
	})
}

// TestJoinTokenConcurrentConsume: of many simultaneous enrolments with one
// token, exactly one wins.
func TestJoinTokenConcurrentConsume(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		if err := s.CreateCluster(ctx, Cluster{Name: "a"}); err != nil {
			t.Fatal(err)
		}
		raw, err := s.CreateJoinToken(ctx, "a", time.Hour, t0)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 16)
		for i := range errs {
			wg.Go(func() { errs[i] = s.ConsumeJoinToken(ctx, "a", raw, t0.Add(time.Second)) })
		}
		wg.Wait()
		ok, used := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrTokenUsed):
				used++
			default:
				t.Errorf("unexpected error %v", err)
			}
		}
		if ok != 1 || used != len(errs)-1 {
			t.Errorf("%d succeeded and %d saw ErrTokenUsed, want 1 and %d", ok, used, len(errs)-1)
		}
	})
}

// TestTokensStoredHashedOnly: no raw token is anywhere in the store file.
func TestTokensStoredHashedOnly(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		if err := s.CreateCluster(ctx, Cluster{Name: "a"}); err != nil {
			t.Fatal(err)
		}
		join, err := s.CreateJoinToken(ctx, "a", time.Hour, t0)
		if err != nil {
			t.Fatal(err)
		}
		api, tok, err := s.CreateAPIToken(ctx, "ci", RoleReadOnly, t0)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := s.Backup(ctx, &buf); err != nil {
			t.Fatal(err)
		}
		secret := api[len(APITokenPrefix)+2*APIIDBytes+1:]
		for _, raw := range []string{join, api, secret} {
			if bytes.Contains(buf.Bytes(), []byte(raw)) {
				t.Errorf("raw token %q found in the store file", raw)
			}
		}
		for _, hash := range []string{HashToken(join), tok.Hash} {
			if !bytes.Contains(buf.Bytes(), []byte(hash)) {
				t.Errorf("hash %q not found in the store file", hash)
			}
		}
	})
}

func TestAPITokens(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		adminRaw, admin, err := s.CreateAPIToken(ctx, "admin", RoleAdmin, t0)
		if err != nil {
			t.Fatal(err)
		}
		roRaw, ro, err := s.CreateAPIToken(ctx, "dashboard", RoleReadOnly, t0.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(APIToken{ID: admin.ID, Name: "admin", Hash: HashToken(adminRaw), Role: RoleAdmin, CreatedAt: t0}, admin); diff != "" {
			t.Errorf("created token (-want +got):\n%s", diff)
		}
		flip := func(s string, i int) string {
			b := []byte(s)
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			return string(b)
		}
		lookups := []struct {
			name    string
			raw     string
			want    APIToken
			wantErr error
		}{
			{name: "admin", raw: adminRaw, want: admin},
			{name: "readonly", raw: roRaw, want: ro},
			{name: "wrong last char", raw: flip(adminRaw, len(adminRaw)-1), wantErr: ErrTokenInvalid},
			{name: "wrong first secret char", raw: flip(adminRaw, len("flt_")+16+1), wantErr: ErrTokenInvalid},
			{name: "other token's id", raw: "flt_" + ro.ID + adminRaw[len("flt_")+16:], wantErr: ErrTokenInvalid},
			{name: "unknown id", raw: "flt_0000000000000000" + adminRaw[len("flt_")+16:], wantErr: ErrTokenInvalid},
			{name: "no prefix", raw: adminRaw[len("flt_"):], wantErr: ErrTokenInvalid},
			{name: "no separator", raw: "flt_" + admin.ID, wantErr: ErrTokenInvalid},
			{name: "empty", raw: "", wantErr: ErrTokenInvalid},
		}
		for _, tt := range lookups {
			t.Run("lookup "+tt.name, func(t *testing.T) {
				got, err := s.LookupAPIToken(ctx, tt.raw)
				errIs(t, "LookupAPIToken", err, tt.wantErr)
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("token (-want +got):\n%s", diff)
				}
			})
		}

		creates := []struct {
			name, tokenName, role string
			wantErr               error
		}{
			{name: "taken name", tokenName: "admin", role: RoleReadOnly, wantErr: ErrConflict},
			{name: "unknown role", tokenName: "x", role: "root", wantErr: ErrInvalid},
			{name: "empty name", tokenName: "", role: RoleAdmin, wantErr: ErrInvalid},
		}
		for _, tt := range creates {
			t.Run("create "+tt.name, func(t *testing.T) {
				_, _, err := s.CreateAPIToken(ctx, tt.tokenName, tt.role, t0)
				errIs(t, "CreateAPIToken", err, tt.wantErr)
			})
		}

		want := []APIToken{admin, ro}
		sort.Slice(want, func(i, j int) bool { return want[i].ID < want[j].ID })
		first, next, err := s.ListAPITokens(ctx, Page{Limit: 1})
		if err != nil || next == "" {
			t.Fatalf("first page: next %q, err %v", next, err)
		}
		second, last, err := s.ListAPITokens(ctx, Page{After: next, Limit: 1})
		if err != nil || last != "" {
			t.Fatalf("second page: next %q, err %v", last, err)
		}
		if diff := cmp.Diff(want, append(first, second...)); diff != "" {
			t.Errorf("listed tokens (-want +got):\n%s", diff)
		}

		if err := s.DeleteAPIToken(ctx, admin.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LookupAPIToken(ctx, adminRaw); !errors.Is(err, ErrTokenInvalid) {
			t.Errorf("deleted token: err %v, want ErrTokenInvalid", err)
		}
		if err := s.DeleteAPIToken(ctx, admin.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("second delete: err %v, want ErrNotFound", err)
		}
	})
}

func TestCA(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		if _, _, err := s.GetCA(ctx); !errors.Is(err, ErrNotFound) {
			t.Fatalf("empty store: err %v, want ErrNotFound", err)
		}
		if err := s.PutCA(ctx, nil, []byte("k")); !errors.Is(err, ErrInvalid) {
			t.Errorf("empty cert: err %v, want ErrInvalid", err)
		}
		for _, pair := range [][2]string{{"cert-1", "key-1"}, {"cert-2", "key-2"}} {
			if err := s.PutCA(ctx, []byte(pair[0]), []byte(pair[1])); err != nil {
				t.Fatal(err)
			}
			cert, key, err := s.GetCA(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(pair, [2]string{string(cert), string(key)}); diff != "" {
				t.Errorf("CA (-want +got):\n%s", diff)
			}
		}
	})
}

// TestEnrollCluster: a join token enrols its cluster once, and only while
// it is valid; a failed signing keeps it usable.
func TestEnrollCluster(t *testing.T) {
	errSign := errors.New("bad CSR")
	enroll := func(c *Cluster) error {
		c.CertSerial, c.CertNotAfter, c.EnrolledAt = "01ab", t0.Add(24*time.Hour), t0.Add(time.Minute)
		return nil
	}
	enrolled := Cluster{Name: "a", CreatedAt: t0, CertSerial: "01ab", CertNotAfter: t0.Add(24 * time.Hour), EnrolledAt: t0.Add(time.Minute)}
	tests := []struct {
		name      string
		cluster   string
		wrongTok  bool
		at        time.Duration
		fn        func(*Cluster) error
		wantErr   error
		want      Cluster // cluster a afterwards
		wantUsed  bool    // token of a used afterwards
		thenAgain error   // a second enrolment with the same token
	}{
		{name: "enrolled", cluster: "a", at: time.Minute, fn: enroll, want: enrolled, wantUsed: true, thenAgain: ErrTokenUsed},
		{name: "signing fails, token kept", cluster: "a", at: time.Minute, fn: func(*Cluster) error { return errSign },
			wantErr: errSign, want: Cluster{Name: "a", CreatedAt: t0}},
		{name: "wrong token", cluster: "a", wrongTok: true, at: time.Minute, fn: enroll, wantErr: ErrTokenInvalid,
			want: Cluster{Name: "a", CreatedAt: t0}},
		{name: "expired", cluster: "a", at: 2 * time.Hour, fn: enroll, wantErr: ErrTokenExpired,
			want: Cluster{Name: "a", CreatedAt: t0}},
		{name: "rename refused", cluster: "a", at: time.Minute, fn: func(c *Cluster) error { c.Name = "b"; return nil },
			wantErr: ErrConflict, want: Cluster{Name: "a", CreatedAt: t0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, s Store) {
				ctx := t.Context()
				if err := s.CreateCluster(ctx, Cluster{Name: "a", CreatedAt: t0}); err != nil {
					t.Fatal(err)
				}
				raw, err := s.CreateJoinToken(ctx, "a", time.Hour, t0)
				if err != nil {
					t.Fatal(err)
				}
				if tt.wrongTok {
					raw = strings.Repeat("A", len(raw))
				}
				errIs(t, "EnrollCluster", s.EnrollCluster(ctx, tt.cluster, raw, t0.Add(tt.at), tt.fn), tt.wantErr)
				got, err := s.GetCluster(ctx, "a")
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("cluster afterwards (-want +got):\n%s", diff)
				}
				tok, err := s.GetJoinToken(ctx, "a")
				if err != nil {
					t.Fatal(err)
				}
				if used := !tok.UsedAt.IsZero(); used != tt.wantUsed {
					t.Errorf("token used = %v, want %v", used, tt.wantUsed)
				}
				if tt.thenAgain != nil {
					errIs(t, "second EnrollCluster", s.EnrollCluster(ctx, tt.cluster, raw, t0.Add(tt.at), tt.fn), tt.thenAgain)
				}
			})
		})
	}
}
