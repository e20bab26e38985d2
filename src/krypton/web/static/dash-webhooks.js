// Webhooks: endpoints (add: the secret is shown once; enable or disable; rotate the secret;
// delete) and one endpoint's deliveries, each of which can be sent again.
(function () {
  "use strict";
  var k = window.krypton, el = k.el;
  var showing = null;
  // On a phone the tables scroll sideways in their box rather than break ids letter by letter
  // (CSSOM: the page's policy allows no style attribute).
  ["endpoints", "deliveries"].forEach(function (id) {
    document.getElementById(id).closest("table").style.minWidth = "720px";
  });
  function nowrap(node) { node.style.whiteSpace = "nowrap"; return node; }
  function pill(status) { return el("span", { class: "pill " + status }, status); }
  function showSecret(endpoint) {
    document.getElementById("secret-for").textContent = endpoint.url;
    document.getElementById("secret").textContent = endpoint.secret;
    document.getElementById("secret-box").hidden = false;
  }
  function act(promise) { return promise.then(function () { k.showError(null); load(); }).catch(k.showError); }
  function actions(e) {
    var base = "/webhook-endpoints/" + encodeURIComponent(e.id);
    return el("td", { class: "actions" },
      el("button", { type: "button", onclick: function () { deliveries(e); } }, "Deliveries"), " ",
      el("button", { type: "button", onclick: function () { act(k.api("PATCH", base, { enabled: !e.enabled })); } },
         e.enabled ? "Disable" : "Enable"), " ",
      el("button", { type: "button", onclick: function () {
        if (!window.confirm("Replace the signing secret? The old one keeps signing for a day.")) { return; }
        k.api("POST", base + "/rotate-secret").then(function (r) { showSecret(r); load(); }).catch(k.showError);
      } }, "Rotate secret"), " ",
      el("button", { type: "button", class: "danger", onclick: function () {
        if (!window.confirm("Delete this endpoint and its delivery log?")) { return; }
        if (showing === e.id) { document.getElementById("deliveries-box").hidden = true; showing = null; }
        act(k.api("DELETE", base));
      } }, "Delete"));
  }
  function load() {
    k.api("GET", "/webhook-endpoints?limit=100").then(function (list) {
      k.fill("endpoints", list.data.map(function (e) {
        return el("tr", { dataset: { id: e.id } },
          el("td", null, el("div", { class: "mono" }, e.url), e.description ? el("div", { class: "muted" }, e.description) : null,
             el("div", { class: "muted" }, el("code", null, e.id))),
          el("td", null, pill(e.enabled ? "enabled" : "disabled"), e.disabled_reason ? el("div", { class: "muted" }, e.disabled_reason) : null,
             e.failing_since ? el("div", { class: "muted" }, "failing since " + k.when(e.failing_since)) : null),
          el("td", null, e.events.join(", ")), actions(e));
      }));
      document.getElementById("empty").hidden = list.data.length > 0;
    }).catch(k.showError);
  }
  function deliveries(e) {
    showing = e.id;
    var base = "/webhook-endpoints/" + encodeURIComponent(e.id);
    document.getElementById("deliveries-for").textContent = e.url;
    document.getElementById("deliveries-box").hidden = false;
    k.api("GET", base + "/deliveries?limit=50").then(function (list) {
      k.fill("deliveries", list.data.map(function (d) {
        return el("tr", null, el("td", null, nowrap(el("code", null, d.id))), el("td", null, d.event_type),
          el("td", null, pill(d.status)), el("td", { class: "num" }, d.attempts),
          el("td", null, d.last_status ? String(d.last_status) : (d.last_error || "")), el("td", null, k.when(d.created_at)),
          el("td", null, el("button", { type: "button", onclick: function () {
            k.api("POST", base + "/deliveries/" + encodeURIComponent(d.id) + "/redeliver")
              .then(function () { deliveries(e); }).catch(k.showError);
          } }, "Redeliver")));
      }));
      document.getElementById("no-deliveries").hidden = list.data.length > 0;
    }).catch(k.showError);
  }
  document.getElementById("secret-done").addEventListener("click", function () {
    document.getElementById("secret").textContent = "";
    document.getElementById("secret-box").hidden = true;
  });
  var form = document.getElementById("create");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var body = { url: form.url.value.trim() };
    if (form.description.value.trim()) { body.description = form.description.value.trim(); }
    k.api("POST", "/webhook-endpoints", body).then(function (created) {
      showSecret(created); form.reset(); k.showError(null); load();
    }).catch(k.showError);
  });
  load();
})();
