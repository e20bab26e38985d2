// Overview: invoice counts, settled volume per asset with a daily chart each (SVG images
// drawn by the server), and the latest invoices.
(function () {
  "use strict";
  var k = window.krypton, el = k.el;
  var charts = document.getElementById("charts");
  var days = charts.dataset.days;
  function card(label, value) {
    return el("div", { class: "card stat" }, el("div", { class: "label" }, label), el("div", { class: "value" }, value));
  }
  function chart(asset) {
    var img = el("img", { src: "/dashboard/charts/volume.svg?asset=" + encodeURIComponent(asset) + "&days=" + days,
                          alt: "Daily settled volume of " + asset + " over the last " + days + " days",
                          width: "480", height: "220" });
    return el("div", { class: "card chart" }, fit(img));
  }
  function pill(status) { return el("span", { class: "pill " + status }, status); }
  // Sizes through CSSOM (the page's policy allows no style attribute): charts two a row on a
  // desktop, one at 390 px, each as wide as its card; two stat cards a row at 390 px.
  function nowrap(node) { node.style.whiteSpace = "nowrap"; return node; }
  function fit(img) { img.style.width = "100%"; img.style.height = "auto"; img.style.display = "block"; return img; }
  charts.style.gridTemplateColumns = "repeat(auto-fit, minmax(320px, 1fr))";
  ["counts", "volume"].forEach(function (id) {
    document.getElementById(id).style.gridTemplateColumns = "repeat(auto-fill, minmax(150px, 1fr))";
  });
  k.api("GET", "/stats?days=" + days).then(function (stats) {
    var counts = stats.invoices;
    k.fill("counts", Object.keys(counts).map(function (status) { return card(status, counts[status]); }));
    k.fill("volume", stats.volume.length ? stats.volume.map(function (v) {
      return card(v.asset + " settled (" + v.count + ")", v.gross + " " + v.asset);
    }) : [el("p", { class: "muted" }, "Nothing settled yet.")]);
    var assets = stats.volume.map(function (v) { return v.asset; });
    (assets.length ? assets : ["TON"]).forEach(function (asset) {
      charts.insertBefore(chart(asset), document.getElementById("confirm-card"));
    });
  }).catch(k.showError);
  fit(document.getElementById("confirm-chart"));
  k.api("GET", "/invoices?limit=5").then(function (list) {
    k.fill("recent", list.data.map(function (inv) {
      return el("tr", null,
        el("td", null, el("a", { href: "/dashboard/invoices/" + encodeURIComponent(inv.id) }, nowrap(el("code", null, inv.id)))),
        el("td", null, pill(inv.status)),
        el("td", { class: "num" }, inv.amount + " " + inv.currency),
        el("td", null, inv.order_id || ""),
        el("td", null, k.when(inv.created_at)));
    }));
  }).catch(k.showError);
})();
