// Package archtest holds tests of the repository's shape: which packages may
// import which, and that every package says what it is for.
package archtest
