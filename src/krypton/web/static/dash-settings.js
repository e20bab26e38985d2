// Settings: the merchant's own settings, read-only (the fee is the operator's).
(function () {
  "use strict";
  var k = window.krypton, el = k.el;
  function pair(label, value) { return el("tr", null, el("th", { scope: "row" }, label), el("td", null, value)); }
  function percent(bps) { return (bps / 100).toFixed(2) + " %"; }
  k.api("GET", "/merchant").then(function (m) {
    k.fill("settings", [
      pair("Merchant", m.name), pair("Id", el("code", null, m.id)),
      pair("Platform fee", percent(m.fee_bps) + " (set by the operator)"),
      pair("Confirmations", m.confirmations_override === null ? "each chain's default" : String(m.confirmations_override)),
      pair("Underpayment accepted", percent(m.underpayment_tolerance_bps)),
      pair("Methods", m.methods.join(", ")),
      pair("TON receiving address", el("code", null, m.ton_receiving_address || "not configured")),
      pair("Own TON address", m.ton_address ? el("code", null, m.ton_address) : "none: the platform's"),
      pair("Fee collector", m.ton_collector ? el("code", null, m.ton_collector) : "none")]);
  }).catch(k.showError);
})();
