package proxycli

import "testing"

func TestParsePodLabels(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", ""},
		{"downward API", "app=\"echo\"\nversion=\"v1\"\npod-template-hash=\"5d7f\"\n", "app=echo,pod-template-hash=5d7f,version=v1"},
		{"unquoted", "app=echo", "app=echo"},
		{"comma in a value left out", "app=\"echo\"\nlist=\"a,b\"", "app=echo"},
		{"garbage lines", "nonsense\n=x\napp=\"echo\"", "app=echo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parsePodLabels(tc.in); got != tc.want {
				t.Errorf("parsePodLabels(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
