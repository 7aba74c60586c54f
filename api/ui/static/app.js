// A few lines of progressive enhancement; every page works without them.
// Ask before withdrawing an override (the form still needs its reason).
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form.action && form.action.indexOf("/withdraw") !== -1) {
    var ask = document.documentElement.lang === "en" ? "Withdraw this override now?" : "确定立即撤销该调整？";
    if (!window.confirm(ask)) { event.preventDefault(); }
  }
});
