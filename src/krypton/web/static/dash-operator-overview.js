// The platform: fees held per asset, how far the chain watchers and the background
// consumers have got, and each chain provider endpoint's health as the process running the
// chain watchers last reported it (rows with no recent report are muted).
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
  // The circuit's state as a pill, coloured with the dashboard's existing pill classes.
  var CIRCUIT = { closed: ["succeeded", "closed"], half_open: ["pending", "half-open"], open: ["failed", "open"] };
  function percent(rate) { return rate === null ? "" : Math.round(rate * 1000) / 10 + " %"; }
  function ms(value) { return value === null ? "" : Math.round(value) + " ms"; }
  function provider(p) {
    var circuit = CIRCUIT[p.state] || ["", p.state];
    var reported = p.stale ? el("span", { class: "error" }, p.stale_note)
                           : el("span", { title: p.process }, lag(p.age_seconds) + " ago");
    return el("tr", { class: p.stale ? "muted stale" : null, dataset: { endpoint: p.name, state: p.state } },
      el("td", null, p.name, el("div", { class: "muted mono" }, p.host)),
      el("td", null, el("span", { class: "pill " + circuit[0] }, circuit[1]),
         p.consecutive_failures ? el("div", { class: "muted" }, p.consecutive_failures + " failures in a row") : null),
      el("td", { class: "num" }, percent(p.success_rate)),
      el("td", { class: "num" }, ms(p.latency_ms)),
      el("td", { class: "num" }, String(p.failures)),
      el("td", { class: "num" }, String(p.throttled)),
      el("td", null, p.last_error ? el("span", { class: "mono" }, p.last_error) : el("span", { class: "muted" }, "none"),
         p.last_error_age_s !== null ? el("div", { class: "muted" }, lag(Math.round(p.last_error_age_s)) + " ago") : null),
      el("td", null, reported));
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
    k.fill("providers", health.providers.map(provider));
    document.getElementById("no-providers").hidden = health.providers.length > 0;
  }).catch(k.showError);
})();
