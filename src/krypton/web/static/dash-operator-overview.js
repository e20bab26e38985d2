// The platform: fees held per asset, how far the chain watchers and the background
// consumers have got, and why provider circuits are not shown here.
(function () {
  "use strict";
  var k = window.krypton, el = k.el;
  function stat(label, value, note) {
    return el("div", { class: "card stat" }, el("div", { class: "label" }, label),
              el("div", { class: "value" }, value), note ? el("div", { class: "muted" }, note) : null);
  }
  function lag(seconds) {
    if (seconds === null || seconds === undefined) { return ""; }
    if (seconds < 120) { return seconds + " s"; }
    if (seconds < 7200) { return Math.round(seconds / 60) + " min"; }
    return Math.round(seconds / 3600) + " h";
  }
  k.api("GET", "/operator/fees").then(function (fees) {
    k.fill("fees", fees.balances.length ? fees.balances.map(function (b) {
      return stat(b.asset + " fees held", b.held + " " + b.asset,
                  b.in_collectors !== "0" ? b.in_collectors + " " + b.asset + " still in fee collectors" : null);
    }) : [el("p", { class: "muted" }, "No fee taken yet.")]);
  }).catch(k.showError);
  k.api("GET", "/operator/health").then(function (health) {
    k.fill("chains", health.chains.map(function (c) {
      return el("tr", null, el("td", null, c.chain), el("td", null, el("span", { class: "mono" }, c.account)),
        el("td", null, c.read_up_to ? k.when(c.read_up_to) : (c.cursor ? el("code", null, c.cursor) : el("span", { class: "muted" }, "no transfer read yet"))),
        el("td", { class: "num" }, lag(c.lag_seconds)));
    }));
    document.getElementById("no-chains").hidden = health.chains.length > 0;
    k.fill("consumers", health.consumers.map(function (c) {
      var behind = c.behind >= c.behind_cap ? c.behind_cap + "+" : String(c.behind);
      return stat(c.name, behind, c.behind === 0 ? "caught up" : "events behind");
    }));
    document.getElementById("providers-note").textContent = health.providers_note;
  }).catch(k.showError);
})();
