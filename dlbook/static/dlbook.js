// Show the glued values (and run line) of the framework the reader selected in any
// PyTorch | Keras tab. sphinx-design keeps that choice in localStorage under
// "sphinx-design-tab-id-tab"; this script mirrors it on <html data-dlbook-framework>,
// which dlbook.css uses to hide the other framework's values.
(function () {
  const KEY = "sphinx-design-tab-id-tab";
  const FRAMEWORKS = ["pytorch", "keras"];
  function show(framework) {
    if (FRAMEWORKS.includes(framework)) {
      document.documentElement.dataset.dlbookFramework = framework;
    }
  }
  try { show(window.localStorage.getItem(KEY)); } catch (err) { /* storage blocked */ }
  const query = new URLSearchParams(window.location.search).get("tab");
  if (query) show(query);
  document.addEventListener("change", function (event) {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || !input.checked) return;
    const label = input.nextElementSibling;
    if (label && label.dataset && label.dataset.syncGroup === "tab") show(label.dataset.syncId);
  });
})();
