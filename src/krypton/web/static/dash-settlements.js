// Settlements and balances: what is available and pending per asset, and every settlement.
(function () {
  "use strict";
  var k = window.krypton, el = k.el;
  var last = null;
  // Amounts and ids stay on one line (CSSOM: the policy allows no style attribute); the
  // table scrolls sideways in its box on a phone instead.
  function nowrap(nodes) { nodes.forEach(function (n) { n.style.whiteSpace = "nowrap"; }); }
  function card(label, value, note) {
    return el("div", { class: "card stat" }, el("div", { class: "label" }, label), el("div", { class: "value" }, value),
      note ? el("div", { class: "muted" }, note) : null);
  }
  k.api("GET", "/balances").then(function (b) {
    k.fill("balances", b.balances.length ? b.balances.map(function (x) {
      return card(x.asset + " available", x.available, "pending " + x.pending);
    }) : [el("p", { class: "muted" }, "No balance yet.")]);
  }).catch(k.showError);
  function load(more) {
    var path = "/settlements?limit=20" + (more && last ? "&starting_after=" + encodeURIComponent(last) : "");
    k.api("GET", path).then(function (list) {
      var rows = document.getElementById("rows");
      list.data.forEach(function (s) {
        rows.appendChild(el("tr", null, el("td", null, el("code", null, s.id)),
          el("td", null, el("a", { href: "/dashboard/invoices/" + encodeURIComponent(s.invoice_id) }, el("code", null, s.invoice_id))),
          el("td", null, el("span", { class: "pill" }, s.status), " ", s.payout),
          el("td", { class: "num" }, s.gross_amount + " " + s.asset),
          el("td", { class: "num" }, s.platform_fee_amount + " (" + s.platform_fee_percentage + " %)"),
          el("td", { class: "num" }, s.net_amount + " " + s.asset), el("td", null, k.when(s.created_at))));
      });
      nowrap(rows.querySelectorAll("td.num, code"));
      last = list.data.length ? list.data[list.data.length - 1].id : last;
      document.getElementById("more").hidden = !list.has_more;
      document.getElementById("empty").hidden = rows.children.length > 0;
    }).catch(k.showError);
  }
  document.getElementById("more").addEventListener("click", function () { load(true); });
  load(false);
})();
