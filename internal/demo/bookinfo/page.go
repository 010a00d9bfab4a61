package bookinfo

// pageHTML is the product page: the book, its details and its reviews.
const pageHTML = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Simple Bookstore App</title>
<link rel="stylesheet" href="static/style.css"></head>
<body>
<nav><span class="brand">BookInfo Sample</span>
{{if .User}}<span class="user">{{.User}} <a href="logout">sign out</a></span>
{{else}}<form method="post" action="login" class="login"><input name="username" placeholder="User Name"> <input name="passwd" type="password" placeholder="Password"> <button type="submit">Sign in</button></form>{{end}}
</nav>
<main>
<h1>{{index .Product "title"}}</h1>
<p class="summary">{{.Description}}</p>
<div class="cols">
<section class="details"><h4>Book Details</h4>
{{with .Details}}<dl>
<dt>Type:</dt><dd>{{.Type}}</dd><dt>Pages:</dt><dd>{{.Pages}}</dd><dt>Publisher:</dt><dd>{{.Publisher}}</dd>
<dt>Language:</dt><dd>{{.Language}}</dd><dt>ISBN-10:</dt><dd>{{.ISBN10}}</dd><dt>ISBN-13:</dt><dd>{{.ISBN13}}</dd>
</dl>{{else}}<h4 class="error">Error fetching product details!</h4>
<p class="error">{{.DetailsError}}</p>{{end}}
</section>
<section class="reviews"><h4>Book Reviews</h4>
{{with .Reviews}}{{range .Reviews}}<blockquote><p>{{.Text}}</p><small>{{.Reviewer}}</small>
{{with .Rating}}{{if .Error}}<p class="error">{{.Error}}</p>{{else}}<p class="stars"><font color="{{.Color}}">{{stars .Stars}}</font></p>{{end}}{{end}}
</blockquote>{{end}}
<p class="served">Reviews served by: <b>{{.PodName}}</b></p>
{{else}}<h4 class="error">Error fetching product reviews!</h4>
<p class="error">{{.ReviewsError}}</p>{{end}}
</section>
</div>
</main></body></html>
`

const styleCSS = `body{font-family:sans-serif;margin:0;color:#222}
nav{background:#1f2d3d;color:#fff;padding:10px 20px;display:flex;justify-content:space-between;align-items:center}
nav a{color:#9cf}.brand{font-weight:bold}main{padding:10px 30px}
.cols{display:flex;gap:40px}.details,.reviews{flex:1}
blockquote{border-left:4px solid #ddd;margin:10px 0;padding:4px 12px}
.stars{font-size:1.3em;margin:4px 0}.error{color:#b00}.served{color:#555}
dt{font-weight:bold;float:left;width:90px}dd{margin:0 0 4px 100px}
`
