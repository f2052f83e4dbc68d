package main

import (
	"slices"
	"testing"
)

// TestStreamParts checks that S1b's parts cover the blob exactly, in
// order, each of the part size but the last.
func TestStreamParts(t *testing.T) {
	for _, tc := range []struct {
		n, part int64
		want    [][2]int64
	}{
		{0, 10, [][2]int64{{0, 0}}},
		{7, 10, [][2]int64{{0, 7}}},
		{10, 10, [][2]int64{{0, 10}}},
		{25, 10, [][2]int64{{0, 10}, {10, 10}, {20, 5}}},
	} {
		if got := streamParts(tc.n, tc.part); !slices.Equal(got, tc.want) {
			t.Errorf("streamParts(%d, %d) = %v, want %v", tc.n, tc.part, got, tc.want)
		}
	}
	const blob = 1<<30 + 16 // the bench's big blob and its suffix
	parts := streamParts(blob, floorPartSize)
	if len(parts) != 103 || parts[102][1] != 4<<20+16 {
		t.Errorf("1 GiB + 16 in %d parts, the last of %d bytes; want 103, the last 4 MiB + 16", len(parts), parts[len(parts)-1][1])
	}
}
