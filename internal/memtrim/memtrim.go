// Package memtrim hands back to the kernel the pages of the program's own
// binary that it touched once and may not touch again: the code and
// read-only data of package initialisation (every protobuf file descriptor
// registers itself) and of start-up. The kernel maps each such page again
// from the page cache the next time it is touched, so what stays resident is
// what the proxy keeps running: its hot path, not its whole past.
//
// Only pages that are still the file's are dropped (read-only, private
// mappings of the executable without private copies), so nothing is lost;
// the cost is a minor fault per page touched again.
package memtrim

// Stats says what a Binary call found and gave back.
type Stats struct {
	Mappings int   // read-only mappings of the executable
	Dropped  int64 // their resident bytes handed back
}
