// The sign-in form: POST /api/v1/session, then on to the page asked for (this site's only).
(function () {
  "use strict";
  var form = document.getElementById("sign-in");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    window.krypton.showError(null);
    fetch("/api/v1/session", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: form.email.value, password: form.password.value })
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) { throw body.error || { message: "HTTP " + response.status }; }
        var next = new URLSearchParams(location.search).get("next") || "";
        window.location.assign(/^\/dashboard(\/|$)/.test(next) ? next : "/dashboard");
      });
    }).catch(window.krypton.showError);
  });
})();
