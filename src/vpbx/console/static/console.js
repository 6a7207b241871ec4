// The cabinet's own script: marks the page live once its event stream is open (tests and people can tell).
document.addEventListener("htmx:sseOpen", function () { document.body.dataset.live = "on"; });
document.addEventListener("htmx:sseError", function () { document.body.dataset.live = "off"; });
// A number's page: show the parts of the form the chosen route uses (without script, every part shows).
function showRouteParts() {
  var type = document.getElementById("f-type");
  if (!type) return;
  document.querySelectorAll("#route-form [data-for]").forEach(function (part) {
    part.hidden = part.dataset.for.split(" ").indexOf(type.value) < 0;
  });
}
document.addEventListener("DOMContentLoaded", function () {
  var type = document.getElementById("f-type");
  if (type) { type.addEventListener("change", showRouteParts); showRouteParts(); }
});
