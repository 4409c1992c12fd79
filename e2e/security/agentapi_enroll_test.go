//go:build !unit

package security

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// TestEnrollWithHugeRequestsDoesNotExhaustTheHub replays finding 4: Enroll
// needs no client certificate, and concurrent calls each carrying a
// certificate request of 63 MiB took the hub to gigabytes. The requests
// are streamed by a hand-written HTTP/2 client (the attacker holds no
// such buffers); the hub must refuse them without reading them in, and
// its peak memory stays bounded.
func TestEnrollWithHugeRequestsDoesNotExhaustTheHub(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	const calls, csrBytes = 12, 63 << 20
	var (
		mu    sync.Mutex
		codes = map[string]int{}
		wg    sync.WaitGroup
	)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := hugeEnroll(t.Context(), h.AgentAddr, fmt.Sprintf("victim-%d", i), csrBytes)
			mu.Lock()
			codes[got]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("answers: %v", codes)
	for c, n := range codes {
		if c != "ResourceExhausted" && c != "InvalidArgument" {
			t.Errorf("%d calls answered %s; want ResourceExhausted or InvalidArgument", n, c)
		}
	}
	if err := apiUp(h); err != nil {
		t.Fatalf("HTTP API after the attack: %v", err)
	}
	peak := vmHWM(t, h.PID()) << 10 // KiB → bytes
	t.Logf("hub peak RSS %d MiB", peak>>20)
	if peak > 200<<20 {
		t.Errorf("hub peak RSS %d MiB after %d Enroll calls of %d MiB; want < 200 MiB", peak>>20, calls, csrBytes>>20)
	}
}

// hugeEnroll sends one Enroll call whose CSR field claims and then streams
// n bytes, and returns the gRPC status the hub answered (its code name),
// or the transport error.
func hugeEnroll(ctx context.Context, addr, cluster string, n int) string {
	var msg []byte
	msg = protowire.AppendTag(msg, 1, protowire.BytesType)
	msg = protowire.AppendString(msg, cluster)
	msg = protowire.AppendTag(msg, 2, protowire.BytesType)
	msg = protowire.AppendString(msg, "not-a-token")
	msg = protowire.AppendTag(msg, 3, protowire.BytesType)
	msg = protowire.AppendVarint(msg, uint64(n))
	frame := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(msg)+n))
	frame = append(frame, msg...)
	body := io.MultiReader(strings.NewReader(string(frame)), io.LimitReader(filler{}, int64(n)))

	tr := &http.Transport{TLSClientConfig: attackerTLS(nil), Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP2(true) // HTTP/2 only, as gRPC speaks
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+"/flotilla.api.v1alpha1.AgentService/Enroll", body)
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return "transport: " + err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	s := resp.Trailer.Get("Grpc-Status")
	if s == "" {
		s = resp.Header.Get("Grpc-Status")
	}
	var c uint32
	if _, err := fmt.Sscan(s, &c); err != nil {
		return fmt.Sprintf("HTTP %d without grpc-status", resp.StatusCode)
	}
	return codes.Code(c).String()
}

// filler reads as an endless run of 'A'.
type filler struct{}

func (filler) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'A'
	}
	return len(p), nil
}

// TestEnrollChecksTheTokenFirst replays the part of finding 10 where Enroll
// parsed and signed the certificate request before it looked at the join
// token: a wrong token must cost no parsing and no signing, a request that
// cannot be signed must not use up a good token, and an address that keeps
// trying is slowed down.
func TestEnrollChecksTheTokenFirst(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	j, err := h.AddCluster(t.Context(), "target")
	if err != nil {
		t.Fatal(err)
	}
	c := dialAgentPort(t, h, attackerTLS(nil))
	ctx := t.Context()
	_, goodCSR := newCSR(t, "target")

	// A wrong token with a request that is not even a CSR: refused for the
	// token, so the request was never looked at.
	_, err = c.Enroll(ctx, &apiv1alpha1.EnrollRequest{Cluster: "target", Token: "wrong", CsrPem: []byte("-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----\n")})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("wrong token, broken CSR: %v; want Unauthenticated (the token is checked before the request is parsed)", err)
	}
	// A wrong token with a good request: refused, no certificate.
	resp, err := c.Enroll(ctx, &apiv1alpha1.EnrollRequest{Cluster: "target", Token: "wrong", CsrPem: goodCSR})
	if status.Code(err) != codes.Unauthenticated || len(resp.GetCertificatePem()) != 0 {
		t.Errorf("wrong token, good CSR: %v, %d certificate bytes; want Unauthenticated and none", err, len(resp.GetCertificatePem()))
	}
	if h.Grep("invalid certificate request") {
		t.Errorf("the hub parsed a certificate request sent with a wrong token:\n%s", h.Tail(3000))
	}
	if !h.Grep("token invalid") {
		t.Errorf("hub log does not show the refused token:\n%s", h.Tail(3000))
	}

	// The good token with a broken request: refused for the request, and
	// the token stays usable.
	if _, err := c.Enroll(ctx, &apiv1alpha1.EnrollRequest{Cluster: "target", Token: j.Token, CsrPem: []byte("junk")}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("good token, broken CSR: %v; want InvalidArgument", err)
	}
	resp, err = c.Enroll(ctx, &apiv1alpha1.EnrollRequest{Cluster: "target", Token: j.Token, CsrPem: goodCSR})
	if err != nil || len(resp.GetCertificatePem()) == 0 {
		t.Fatalf("good token, good CSR after a broken one: %v", err)
	}

	// An address guessing tokens is slowed down.
	limited := 0
	for range 40 {
		_, err := c.Enroll(ctx, &apiv1alpha1.EnrollRequest{Cluster: "target", Token: "guess", CsrPem: goodCSR})
		switch status.Code(err) {
		case codes.ResourceExhausted:
			limited++
		case codes.Unauthenticated:
		default:
			t.Fatalf("guessed token: %v; want Unauthenticated or ResourceExhausted", err)
		}
	}
	if limited == 0 {
		t.Error("40 Enroll calls in a row from one address were all served; want a rate limit")
	}
}
