// Settings: the merchant's own settings (the fee is the operator's); its owner may change
// the confirmations and the TON receiving address.
(function () {
  "use strict";
  var k = window.krypton, el = k.el;
  function pair(label, value) { return el("tr", null, el("th", { scope: "row" }, label), el("td", null, value)); }
  function percent(bps) { return (bps / 100).toFixed(2) + " %"; }
  function show(m) {
    k.fill("settings", [
      pair("Merchant", m.name), pair("Id", el("code", null, m.id)),
      pair("Platform fee", percent(m.fee_bps) + " (set by the operator)"),
      pair("Confirmations", m.confirmations_override === null ? "each chain's default" : String(m.confirmations_override)),
      pair("Underpayment accepted", percent(m.underpayment_tolerance_bps)),
      pair("Methods", m.methods.join(", ")),
      pair("TON receiving address", el("code", null, m.ton_receiving_address || "not configured")),
      pair("Own TON address", m.ton_address ? el("code", null, m.ton_address) : "none: the platform's"),
      pair("Fee collector", m.ton_collector ? el("code", null, m.ton_collector) : "none")]);
    var form = document.getElementById("change");
    if (form) {
      form.confirmations.value = m.confirmations_override === null ? "" : m.confirmations_override;
      form.ton_address.value = m.ton_address || "";
    }
  }
  k.api("GET", "/merchant").then(show).catch(k.showError);
  var form = document.getElementById("change");
  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      k.showError(null);
      var confirmations = form.confirmations.value.trim();
      var address = form.ton_address.value.trim();
      k.api("PATCH", "/merchant", {
        confirmations_override: confirmations === "" ? null : Number(confirmations),
        ton_address: address === "" ? null : address
      }).then(function (m) {
        show(m);
        document.getElementById("saved").textContent = "Saved.";
      }).catch(k.showError);
    });
  }
})();
