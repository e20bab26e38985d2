// API keys: the merchant's keys (never their secrets), creating one (its secret is shown
// once, here) and revoking one. Only a session may do this: the API refuses API keys.
(function () {
  "use strict";
  var k = window.krypton, el = k.el;
  var ALL = Number(document.getElementById("scopes").dataset.all);  // how many scopes there are
  // Spacing between the cards, set through the CSSOM (the policy allows no inline styles).
  document.getElementById("new-key").style.marginTop = "12px";
  function pill(status) { return el("span", { class: "pill " + (status === "active" ? "succeeded" : "failed") }, status); }
  function revoke(key) {
    if (!window.confirm("Revoke " + key.prefix + "…? Requests with it are refused from now on.")) { return; }
    k.api("DELETE", "/api-keys/" + encodeURIComponent(key.id))
      .then(function () { k.showError(null); load(); }).catch(k.showError);
  }
  function day(iso) { return new Date(iso).toLocaleDateString(); }  // the full time is its title
  function scopes(key) {
    return key.scopes.length === ALL ? "all scopes" : key.scopes.join(", ");
  }
  // Four narrow columns, so the table fits a phone: the id is the row's title, not a column.
  function row(key) {
    return el("tr", { dataset: { id: key.id, status: key.status }, title: key.id },
      el("td", null, el("code", null, key.prefix + "…"), el("div", { class: "muted", title: k.when(key.created_at) }, day(key.created_at))),
      el("td", null, scopes(key)),
      el("td", null, pill(key.status), key.revoked_at ? el("div", { class: "muted", title: k.when(key.revoked_at) }, day(key.revoked_at)) : null),
      el("td", null, key.status === "active"
        ? el("button", { type: "button", class: "danger", onclick: function () { revoke(key); } }, "Revoke") : null));
  }
  function load() {
    return k.api("GET", "/api-keys").then(function (list) {
      var keys = list.data.slice().reverse();  // newest first
      k.fill("keys", keys.length ? keys.map(row)
        : [el("tr", null, el("td", { colspan: "4", class: "muted" }, "No keys yet."))]);
    }).catch(k.showError);
  }
  var form = document.getElementById("create");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var scopes = Array.prototype.map.call(form.querySelectorAll("input[name=scopes]:checked"),
                                          function (box) { return box.value; });
    k.api("POST", "/api-keys", scopes.length ? { scopes: scopes } : {}).then(function (key) {
      k.showError(null);
      document.getElementById("new-secret").textContent = key.secret;
      document.getElementById("new-key").hidden = false;
      form.reset();
      load();
    }).catch(k.showError);
  });
  document.getElementById("copy-secret").addEventListener("click", function () {
    var text = document.getElementById("new-secret").textContent;
    navigator.clipboard.writeText(text).then(function () {
      document.getElementById("copy-secret").textContent = "Copied";
    }).catch(k.showError);
  });
  document.getElementById("hide-secret").addEventListener("click", function () {
    // Gone from the page for good: the API will not show it again either.
    document.getElementById("new-secret").textContent = "";
    document.getElementById("new-key").hidden = true;
    document.getElementById("copy-secret").textContent = "Copy";
  });
  load();
})();
