// Package web holds the console's front-end: its TypeScript source (src/,
// built with Vite by `npm run build`) and the built assets (dist/), which
// are committed and embedded here so that weft builds without Node.
package web

import (
	"embed"
	"io/fs"
)

//go:embed dist
var dist embed.FS

// Assets returns the built console (index.html and assets/), rooted at dist/.
func Assets() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path: fs.Sub cannot fail
	}
	return sub
}
