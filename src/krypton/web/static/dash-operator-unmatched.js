// Unmatched transfers across merchants, newest first: what arrived and why it paid nothing.
(function () {
  "use strict";
  var k = window.krypton, el = k.el;
  // Wide: on a phone the table scrolls sideways in its box rather than crushing its columns
  // (set through the CSSOM: the policy allows no inline styles).
  document.getElementById("unmatched").closest("table").style.minWidth = "720px";
  var limit = 50;
  function load() {
    k.api("GET", "/operator/unmatched?limit=" + limit).then(function (list) {
      k.fill("unmatched", list.data.length ? list.data.map(function (u) {
        return el("tr", null, el("td", null, k.when(u.observed_at)), el("td", null, u.chain),
          el("td", { class: "num" }, u.amount + " " + u.asset), el("td", null, el("span", { class: "pill" }, u.reason)),
          el("td", null, u.memo ? el("code", null, u.memo) : ""), el("td", null, el("span", { class: "mono" }, u.destination)),
          el("td", null, el("span", { class: "mono" }, u.tx_id)));
      }) : [el("tr", null, el("td", { colspan: "7", class: "muted" }, "No unmatched transfer."))]);
      // The API pages by size only: up to its largest page, then the newest 100 stay shown.
      document.getElementById("more").hidden = !(list.has_more && limit < 100);
    }).catch(k.showError);
  }
  document.getElementById("more").addEventListener("click", function () { limit = 100; load(); });
  load();
})();
