// Users: the merchant's dashboard users; an owner adds one (with an initial password),
// changes a role, disables or enables one. The API refuses an owner demoting or disabling
// themself and leaving the merchant without an enabled owner; the page says why.
(function () {
  "use strict";
  var k = window.krypton, el = k.el;
  var ROLES = ["owner", "developer", "viewer"];
  var table = document.getElementById("users");
  var me = table.dataset.me;  // the signed-in user: its own role and status are not offered
  // Set through the CSSOM (the policy allows no inline styles): the form's fields line up at
  // their tops, and the two columns fit a phone without the tables' usual 640 px.
  document.querySelector("#add .toolbar").style.alignItems = "flex-start";
  table.closest("table").style.minWidth = "0";
  function day(iso) { return new Date(iso).toLocaleDateString(); }  // the full time is its title
  function change(user, body) {
    k.showError(null);
    return k.api("PATCH", "/users/" + encodeURIComponent(user.id), body).then(load)
      .catch(function (error) { k.showError(error); load(); });  // back to what is stored
  }
  function roleSelect(user) {
    var select = el("select", { "aria-label": "Role of " + user.email, disabled: user.id === me,
                                onchange: function () { change(user, { role: select.value }); } });
    select.replaceChildren.apply(select, ROLES.map(function (role) {
      return el("option", { value: role, selected: role === user.role }, role);
    }));
    return select;
  }
  function toggle(user) {
    if (user.id === me) { return null; }
    if (user.disabled) {
      return el("button", { type: "button", onclick: function () { change(user, { disabled: false }); } }, "Enable");
    }
    return el("button", { type: "button", class: "danger", onclick: function () {
      if (window.confirm("Disable " + user.email + "? They cannot sign in until enabled, and their open sessions end at once.")) {
        change(user, { disabled: true });
      }
    } }, "Disable");
  }
  function status(user) {
    return el("span", { class: "pill " + (user.disabled ? "failed" : "succeeded") }, user.disabled ? "disabled" : "active");
  }
  // Two columns: who (added when, active or disabled since when); the role and the button
  // (beside the role, or under it where the screen is narrow).
  function row(user) {
    var who = el("td", null, user.email, user.id === me ? el("span", { class: "muted" }, " (you)") : null,
      el("div", { class: "muted", title: k.when(user.created_at) }, "added " + day(user.created_at)),
      el("div", null, status(user), user.disabled_at
        ? el("span", { class: "muted", title: k.when(user.disabled_at) }, " since " + day(user.disabled_at)) : null));
    who.style.overflowWrap = "break-word";  // only an address longer than the column breaks
    return el("tr", { dataset: { id: user.id, email: user.email, role: user.role,
                                 status: user.disabled ? "disabled" : "active" }, title: user.id },
      who, el("td", null, roleSelect(user), " ", toggle(user)));
  }
  function load() {
    return k.api("GET", "/users").then(function (list) {
      k.fill(table, list.data.map(row));
    }).catch(k.showError);
  }
  var form = document.getElementById("add");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    k.showError(null);
    document.getElementById("added").textContent = "";
    k.api("POST", "/users", { email: form.email.value.trim(), role: form.role.value,
                              password: form.password.value }).then(function (user) {
      document.getElementById("added").textContent = "Added " + user.email + ".";
      form.reset();
      load();
    }).catch(k.showError);
  });
  load();
})();
