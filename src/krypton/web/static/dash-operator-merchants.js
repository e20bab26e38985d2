// Merchants: the list with each one's fee, creating one (its first API key is shown once)
// and changing a fee (for invoices created from then on).
(function () {
  "use strict";
  var k = window.krypton, el = k.el;
  // Wide: on a phone the table scrolls sideways in its box rather than crushing its columns
  // (set through the CSSOM: the policy allows no inline styles).
  document.getElementById("merchants").closest("table").style.minWidth = "720px";
  var manage = !document.getElementById("create-box").hidden;
  function setFee(merchant, input) {
    var bps = input.value.trim();
    if (!/^\d+$/.test(bps)) { k.showError({ message: "Give the fee as a whole number of basis points (100 = 1 %)." }); return; }
    k.api("PATCH", "/operator/merchants/" + encodeURIComponent(merchant.id), { fee_bps: Number(bps) })
      .then(function () { k.showError(null); load(); }).catch(k.showError);
  }
  function feeEditor(m) {
    var input = el("input", { type: "text", inputmode: "numeric", size: "5", value: String(m.fee_bps),
                              "aria-label": "New fee for " + m.name + " in basis points" });
    return el("form", { class: "toolbar", onsubmit: function (event) { event.preventDefault(); setFee(m, input); } },
              input, el("button", { type: "submit" }, "Set fee"));
  }
  function row(m) {
    return el("tr", { dataset: { id: m.id } },
      el("td", null, el("strong", null, m.name), el("div", { class: "muted" }, el("code", null, m.id))),
      el("td", { class: "num" }, m.fee_percentage + " %", el("div", { class: "muted" }, m.fee_bps + " bps")),
      el("td", null, m.methods.join(", ")),
      el("td", null, m.ton_collector ? el("div", null, "collector ", el("code", null, m.ton_collector))
        : (m.ton_address ? el("code", null, m.ton_address) : el("span", { class: "muted" }, "platform address"))),
      el("td", null, manage ? feeEditor(m) : null));
  }
  function load() {
    k.api("GET", "/operator/merchants").then(function (list) {
      k.fill("merchants", list.data.length ? list.data.map(row)
        : [el("tr", null, el("td", { colspan: "5", class: "muted" }, "No merchant yet."))]);
    }).catch(k.showError);
  }
  var form = document.getElementById("create");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var body = { name: form.name.value.trim() };
    var fee = form.fee_bps.value.trim(), ton = form.ton_address.value.trim();
    if (fee) {
      if (!/^\d+$/.test(fee)) { k.showError({ message: "Give the fee as a whole number of basis points (100 = 1 %)." }); return; }
      body.fee_bps = Number(fee);
    }
    if (ton) { body.ton_address = ton; }
    k.api("POST", "/operator/merchants", body).then(function (m) {
      k.showError(null);
      document.getElementById("created-name").textContent = m.name;
      document.getElementById("created-key").textContent = m.api_key;
      document.getElementById("created").hidden = false;
      form.reset();
      load();
    }).catch(k.showError);
  });
  document.getElementById("hide-created").addEventListener("click", function () {
    document.getElementById("created-key").textContent = "";
    document.getElementById("created").hidden = true;
  });
  load();
})();
