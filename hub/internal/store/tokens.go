package store

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// Raw tokens are 32 random bytes in base64url. API tokens carry their ID in
// front ("flt_<id>_<secret>") so that a lookup finds the record by ID and
// then compares hashes in constant time; the secret itself is never a key.
const (
	APITokenPrefix = "flt_"
	TokenBytes     = 32
	APIIDBytes     = 8
)

// DummyHash stands in for a missing record's hash so that a miss costs a
// full comparison too.
var DummyHash = strings.Repeat("0", 2*sha256.Size)

// RandomString is n random bytes, base64url (for tokens and IDs).
func RandomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// HashToken is the stored form of a raw token: hex SHA-256.
func HashToken(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// HashMatches compares the hash of raw with a stored hash in time that does
// not depend on where they differ.
func HashMatches(stored, raw string) bool {
	return subtle.ConstantTimeCompare([]byte(stored), []byte(HashToken(raw))) == 1
}
