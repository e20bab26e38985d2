// Webhook delivery failures across merchants, newest first, a page at a time.
(function () {
  "use strict";
  var k = window.krypton, el = k.el;
  // Wide: on a phone the table scrolls sideways in its box rather than crushing its columns
  // (set through the CSSOM: the policy allows no inline styles).
  document.getElementById("failures").closest("table").style.minWidth = "720px";
  var rows = [], after = null;
  function row(d) {
    return el("tr", null, el("td", null, k.when(d.created_at)), el("td", null, el("code", null, d.merchant_id)),
      el("td", null, d.event_type, el("div", { class: "muted" }, el("code", null, d.id))),
      el("td", null, el("span", { class: "pill " + d.status }, d.status),
         d.next_attempt_at ? el("div", { class: "muted" }, "next " + k.when(d.next_attempt_at)) : null),
      el("td", { class: "num" }, d.attempts),
      el("td", null, d.last_status ? "HTTP " + d.last_status : (d.last_error || "")),
      el("td", null, d.endpoint_url ? el("span", { class: "mono" }, d.endpoint_url) : el("span", { class: "muted" }, "deleted")));
  }
  function load() {
    var path = "/operator/webhook-failures?limit=50" + (after ? "&starting_after=" + encodeURIComponent(after) : "");
    k.api("GET", path).then(function (list) {
      rows = rows.concat(list.data.map(row));
      k.fill("failures", rows.length ? rows
        : [el("tr", null, el("td", { colspan: "7", class: "muted" }, "No failed delivery."))]);
      after = list.data.length ? list.data[list.data.length - 1].id : after;
      document.getElementById("more").hidden = !list.has_more;
    }).catch(k.showError);
  }
  document.getElementById("more").addEventListener("click", load);
  load();
})();
