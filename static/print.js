// The statement's Print button (a file, not an inline handler: the Content-Security-Policy).
document.querySelectorAll("[data-print]").forEach(function (b) {
  b.addEventListener("click", function () { window.print(); });
});
