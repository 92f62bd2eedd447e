// The admin dashboard's HTML shell (GET <prefix>/admin/ui). Static: no data and no secret is in
// it; the script signs in with the admin token typed into the form and calls the admin JSON API.
// Assets are relative URLs, so the page works under whatever mount prefix the library is given.
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>meshbox admin</title>
<link rel="stylesheet" href="ui/app.css">
<script src="ui/app.js" defer></script>
</head>
<body>
<header><h1>meshbox admin</h1><button id="sign-out" type="button" hidden>Sign out</button></header>
<main>
<section id="sign-in">
  <h2>Sign in</h2>
  <form id="sign-in-form" method="post" autocomplete="off">
    <label for="token">Admin token</label>
    <input id="token" name="token" type="password" required spellcheck="false">
    <button type="submit">Sign in</button>
  </form>
  <p id="sign-in-error" class="error" role="alert" hidden></p>
</section>
<div id="app" hidden>
  <p id="app-error" class="error" role="alert" hidden></p>
  <section id="usage"><h2>Tenant</h2><dl id="usage-list"></dl></section>
  <section id="meshes">
    <h2>Meshes</h2>
    <table><thead><tr><th>Mesh</th><th>Objects</th><th>Bytes</th><th>Change files</th><th>Stored files</th><th>Last write</th></tr></thead>
    <tbody id="mesh-rows"></tbody></table>
    <p class="pager"><button id="meshes-prev" type="button" disabled>Previous</button> <button id="meshes-next" type="button" disabled>Next</button></p>
  </section>
  <section id="mesh-detail" hidden>
    <h2>Mesh <code id="detail-mesh"></code></h2>
    <dl id="detail-stats"></dl>
    <h3>Writes per hour, last 24 hours</h3>
    <div id="chart"></div>
    <p><button id="wipe" type="button" class="danger">Wipe this mesh…</button></p>
  </section>
  <section id="keys"><h2>API keys</h2>
    <table><thead><tr><th>Id</th><th>Name</th><th>Mesh pattern</th><th>Access</th><th>Created</th><th>Last used</th><th>Revoked</th><th></th></tr></thead>
    <tbody id="key-rows"></tbody></table></section>
  <section id="sessions"><h2>Sessions</h2>
    <table><thead><tr><th>Id</th><th>Key</th><th>Subject</th><th>Mesh pattern</th><th>Scope</th><th>Expires</th><th>Revoked</th><th></th></tr></thead>
    <tbody id="session-rows"></tbody></table></section>
  <section id="grants"><h2>Grants</h2>
    <table><thead><tr><th>Id</th><th>Subject</th><th>Mesh pattern</th><th>Access</th><th>Created</th><th></th></tr></thead>
    <tbody id="grant-rows"></tbody></table></section>
</div>
<dialog id="confirm">
  <form id="confirm-form" method="dialog">
    <p id="confirm-text"></p>
    <p>Type <code id="confirm-expected"></code> to confirm.</p>
    <input id="confirm-input" type="text" autocomplete="off" spellcheck="false" aria-label="Confirmation">
    <p><button id="confirm-cancel" type="button">Cancel</button> <button id="confirm-ok" type="submit" class="danger" disabled>Confirm</button></p>
  </form>
</dialog>
</main>
</body>
</html>
`;

export const DASHBOARD_CSS = `
:root { font-family: system-ui, sans-serif; color: #1d232a; background: #f6f7f9; }
body { margin: 0; }
header { display: flex; justify-content: space-between; align-items: center; padding: .5rem 1.5rem; background: #1d232a; color: #fff; }
header h1 { font-size: 1.2rem; margin: 0; }
main { padding: 1rem 1.5rem; max-width: 80rem; }
section { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: .5rem 1rem 1rem; margin-bottom: 1rem; }
h2 { font-size: 1.05rem; }
table { border-collapse: collapse; width: 100%; font-size: .875rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #eceef1; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; font-size: .875rem; }
dt { color: #5b6470; }
dd { margin: 0; font-variant-numeric: tabular-nums; }
button { font: inherit; padding: .25rem .7rem; cursor: pointer; }
button.link { background: none; border: none; color: #0b5cad; padding: 0; text-decoration: underline; }
button.danger { color: #fff; background: #b42318; border: 1px solid #8f1c13; border-radius: 4px; }
button.danger:disabled { opacity: .5; cursor: not-allowed; }
.error { color: #b42318; font-weight: 600; }
input { font: inherit; padding: .25rem .4rem; min-width: 20rem; }
label { display: block; margin-bottom: .25rem; }
#chart svg { width: 100%; max-width: 48rem; height: 12rem; }
#chart rect.bar { fill: #2f6fdf; }
#chart text { font-size: 10px; fill: #5b6470; }
dialog { border: 1px solid #dde1e6; border-radius: 6px; }
`;
