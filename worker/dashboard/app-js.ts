// The admin dashboard's script (GET <prefix>/admin/ui/app.js), plain browser JavaScript with no
// build step. The admin token lives in sessionStorage (gone with the tab) and only ever travels as
// an Authorization header to the admin JSON API beside the page; the DOM is built with
// textContent, never innerHTML, so a mesh id or key name cannot inject markup.
// Written without backticks or "${" so it can live in this template string.
export const DASHBOARD_JS = String.raw`"use strict";
(function () {
  var TOKEN_KEY = "meshbox-admin-token";
  var PAGE_SIZE = 20;
  // The page is served at <prefix>/admin/ui; the API is <prefix>/admin/...
  var API = location.pathname.replace(/\/ui\/?$/, "");
  var $ = function (id) { return document.getElementById(id); };
  var state = { cursors: [null], page: 0, nextCursor: null, mesh: null };

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  function ApiError(status, code, message) { this.status = status; this.code = code; this.message = message; }

  function api(method, path, tokenOverride) {
    var t = tokenOverride || token();
    return fetch(API + path, {
      method: method,
      headers: { Authorization: "Bearer " + t, Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    }).then(function (res) {
      return res.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        if (!res.ok) {
          throw new ApiError(res.status, body && body.error ? body.error : "http_" + res.status,
            body && body.message ? body.message : "The server answered " + res.status + ".");
        }
        return body;
      });
    });
  }

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function bytes(n) {
    if (typeof n !== "number") return "–";
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(1)) + " " + units[i];
  }

  function when(iso) { return iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "–"; }

  function showError(where, err) {
    var node = $(where);
    node.textContent = err instanceof ApiError ? err.message + " (" + err.status + " " + err.code + ")" : String(err && err.message ? err.message : err);
    node.hidden = false;
  }

  function failed(err) {
    if (err instanceof ApiError && err.status === 401) {
      signOut();
      showError("sign-in-error", new ApiError(401, err.code, "The admin token was refused; sign in again."));
      return;
    }
    showError("app-error", err);
  }

  function definitions(node, pairs) {
    clear(node);
    pairs.forEach(function (p) { node.appendChild(el("dt", p[0])); node.appendChild(el("dd", p[1])); });
  }

  // Typed confirmation: the action runs only once the exact id is typed.
  function confirmTyped(text, expected, action) {
    var dialog = $("confirm"), input = $("confirm-input"), ok = $("confirm-ok");
    $("confirm-text").textContent = text;
    $("confirm-expected").textContent = expected;
    input.value = "";
    ok.disabled = true;
    input.oninput = function () { ok.disabled = input.value !== expected; };
    $("confirm-cancel").onclick = function () { dialog.close(); };
    $("confirm-form").onsubmit = function (ev) {
      ev.preventDefault();
      if (input.value !== expected) return;
      dialog.close();
      action();
    };
    dialog.showModal();
    input.focus();
  }

  function loadUsage() {
    return api("GET", "/usage").then(function (u) {
      definitions($("usage-list"), [
        ["Meshes", u.meshes], ["Objects", u.objects],
        ["Change bytes", bytes(u.bytes.change)], ["Snapshot bytes", bytes(u.bytes.snapshot)],
        ["Control bytes", bytes(u.bytes.control)], ["Stored-file bytes", bytes(u.bytes.stored)],
        ["Stored files", u.storedFiles], ["Recovery wrappers", u.recovery ? u.recovery.count : "–"],
      ]);
    });
  }

  function loadMeshes() {
    var cursor = state.cursors[state.page];
    var q = "?limit=" + PAGE_SIZE + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
    return api("GET", "/meshes" + q).then(function (page) {
      var rows = $("mesh-rows");
      clear(rows);
      page.meshes.forEach(function (m) {
        var tr = el("tr");
        var td = el("td");
        var open = el("button", m.mesh, "link");
        open.type = "button";
        open.dataset.mesh = m.mesh;
        open.addEventListener("click", function () { openMesh(m.mesh).catch(failed); });
        td.appendChild(open);
        tr.appendChild(td);
        [m.objects, bytes(m.bytes), m.changeFiles, m.storedFiles].forEach(function (v) { tr.appendChild(el("td", v, "num")); });
        tr.appendChild(el("td", when(m.lastWriteAt)));
        rows.appendChild(tr);
      });
      if (page.meshes.length === 0) { var tr = el("tr"); var td = el("td", "No meshes yet."); td.colSpan = 6; tr.appendChild(td); rows.appendChild(tr); }
      state.nextCursor = page.nextCursor;
      $("meshes-prev").disabled = state.page === 0;
      $("meshes-next").disabled = !page.nextCursor;
    });
  }

  function drawChart(buckets) {
    var ns = "http://www.w3.org/2000/svg";
    var W = 480, H = 160, top = 14, bottom = 20;
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("role", "img");
    svg.setAttribute("preserveAspectRatio", "xMinYMid meet");
    var max = buckets.reduce(function (a, b) { return Math.max(a, b.writes); }, 0);
    var total = buckets.reduce(function (a, b) { return a + b.writes; }, 0);
    svg.setAttribute("aria-label", total + " writes in the last " + buckets.length + " hours");
    var slot = W / buckets.length;
    buckets.forEach(function (b, i) {
      var h = max === 0 ? 0 : Math.round((b.writes / max) * (H - top - bottom));
      if (b.writes > 0 && h < 1) h = 1;
      var rect = document.createElementNS(ns, "rect");
      rect.setAttribute("class", "bar");
      rect.setAttribute("x", String(i * slot + 1));
      rect.setAttribute("y", String(H - bottom - h));
      rect.setAttribute("width", String(Math.max(1, slot - 2)));
      rect.setAttribute("height", String(h));
      rect.setAttribute("data-writes", String(b.writes));
      var title = document.createElementNS(ns, "title");
      title.textContent = when(b.hour) + ": " + b.writes + " writes, " + bytes(b.bytes);
      rect.appendChild(title);
      svg.appendChild(rect);
      if (i % 6 === 0 || i === buckets.length - 1) {
        var label = document.createElementNS(ns, "text");
        label.setAttribute("x", String(i * slot + 1));
        label.setAttribute("y", String(H - 6));
        label.textContent = b.hour.slice(11, 16);
        svg.appendChild(label);
      }
    });
    var peak = document.createElementNS(ns, "text");
    peak.setAttribute("x", "2");
    peak.setAttribute("y", "10");
    peak.textContent = "max " + max + "/h, total " + total;
    svg.appendChild(peak);
    var chart = $("chart");
    clear(chart);
    chart.appendChild(svg);
  }

  function openMesh(mesh) {
    state.mesh = mesh;
    var path = "/meshes/" + encodeURIComponent(mesh);
    return Promise.all([api("GET", path), api("GET", path + "/activity?hours=24")]).then(function (r) {
      var s = r[0];
      $("detail-mesh").textContent = mesh;
      definitions($("detail-stats"), [
        ["Objects", s.objects], ["Bytes", bytes(s.bytes)], ["Tombstones", s.tombstones],
        ["Stored files", s.storedFiles], ["Stored bytes", bytes(s.storedBytes)],
        ["Last write", when(s.lastWriteAt)], ["Last read", when(s.lastReadAt)],
        ["Generation", s.hub.currentGeneration === null ? "–" : s.hub.currentGeneration],
        ["Control objects", s.hub.controlObjects], ["Sockets", s.hub.connected], ["Hub seq", s.hub.seq],
      ]);
      drawChart(r[1].buckets);
      $("mesh-detail").hidden = false;
    });
  }

  function revokeButton(label, id, what, path, reload) {
    var b = el("button", label, "danger");
    b.type = "button";
    b.dataset.id = id;
    b.addEventListener("click", function () {
      confirmTyped("Revoke " + what + " " + id + "?", id, function () {
        api("DELETE", path + encodeURIComponent(id)).then(reload).catch(failed);
      });
    });
    return b;
  }

  function fill(tbodyId, items, cells, action) {
    var rows = $(tbodyId);
    clear(rows);
    if (items.length === 0) {
      var empty = el("tr"), cell = el("td", "None.");
      cell.colSpan = rows.parentNode.querySelectorAll("th").length;
      empty.appendChild(cell);
      rows.appendChild(empty);
    }
    items.forEach(function (item) {
      var tr = el("tr");
      tr.dataset.id = item.id || item.jti;
      cells(item).forEach(function (v) { tr.appendChild(el("td", v)); });
      var td = el("td");
      var a = action(item);
      if (a) td.appendChild(a);
      tr.appendChild(td);
      rows.appendChild(tr);
    });
  }

  function loadKeys() {
    return api("GET", "/keys").then(function (r) {
      fill("key-rows", r.keys, function (k) { return [k.id, k.name, k.meshPattern, k.access, when(k.createdAt), when(k.lastUsedAt), when(k.revokedAt)]; },
        function (k) { return k.revokedAt ? null : revokeButton("Revoke", k.id, "API key", "/keys/", loadKeys); });
    });
  }

  function loadSessions() {
    return api("GET", "/sessions?limit=100").then(function (r) {
      fill("session-rows", r.sessions, function (s) { return [s.jti, s.keyId, s.subject, s.meshPattern, s.scope, when(s.expiresAt), when(s.revokedAt)]; },
        function (s) { return s.revokedAt ? null : revokeButton("Revoke", s.jti, "session", "/sessions/", loadSessions); });
    });
  }

  function loadGrants() {
    return api("GET", "/grants").then(function (r) {
      fill("grant-rows", r.grants, function (g) { return [g.id, g.subject, g.meshPattern, g.access, when(g.createdAt)]; },
        function (g) { return revokeButton("Revoke", g.id, "grant", "/grants/", loadGrants); });
    });
  }

  function loadAll() {
    $("app-error").hidden = true;
    return Promise.all([loadUsage(), loadMeshes(), loadKeys(), loadSessions(), loadGrants()]);
  }

  function showApp(on) {
    $("sign-in").hidden = on;
    $("app").hidden = !on;
    $("sign-out").hidden = !on;
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    state = { cursors: [null], page: 0, nextCursor: null, mesh: null };
    $("mesh-detail").hidden = true;
    showApp(false);
  }

  function signIn(candidate) {
    $("sign-in-error").hidden = true;
    // /usage proves the token before it is kept.
    return api("GET", "/usage", candidate).then(function () {
      sessionStorage.setItem(TOKEN_KEY, candidate);
      $("token").value = "";
      showApp(true);
      return loadAll().catch(failed);
    }, function (err) {
      showError("sign-in-error", err instanceof ApiError && err.status === 401
        ? new ApiError(401, err.code, "The admin token was refused.") : err);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("sign-in-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var t = $("token").value;
      if (t) signIn(t);
    });
    $("sign-out").addEventListener("click", signOut);
    $("meshes-next").addEventListener("click", function () {
      if (!state.nextCursor) return;
      state.cursors[state.page + 1] = state.nextCursor;
      state.page++;
      loadMeshes().catch(failed);
    });
    $("meshes-prev").addEventListener("click", function () {
      if (state.page === 0) return;
      state.page--;
      loadMeshes().catch(failed);
    });
    $("wipe").addEventListener("click", function () {
      var mesh = state.mesh;
      if (!mesh) return;
      confirmTyped("Wipe mesh " + mesh + "? Every object, stored file and control object goes.", mesh, function () {
        api("DELETE", "/meshes/" + encodeURIComponent(mesh)).then(function () {
          $("mesh-detail").hidden = true;
          state.mesh = null;
          return loadAll();
        }).catch(failed);
      });
    });
    if (token()) { showApp(true); loadAll().catch(failed); }
  });
})();
`;
