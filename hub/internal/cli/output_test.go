package cli

import "testing"

func TestShortRev(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "-"},
		{"0123456789abcdef", "01234567"},
		{"abc", "abc"},
		{"0123456789abcdef,fedcba9876543210,0123456789abcdef", "01234567,fedcba98,01234567"},
	}
	for _, tt := range tests {
		if got := shortRev(tt.in); got != tt.want {
			t.Errorf("shortRev(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
