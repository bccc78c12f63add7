// The order page's live list shows each frame once, keyed by its frame id (data-frame-id): a card
// the stream sends for a frame already listed is dropped. The page reads the stream's start before
// its frames (web/routes/orders.py), so a frame stored while the page loads is both listed and
// replayed; a browser reconnecting may also replay a frame whose summary it had not received.
document.addEventListener("htmx:sseBeforeMessage", function (evt) {
  var list = evt.target;
  if (!list || list.id !== "frames" || !evt.detail || typeof evt.detail.data !== "string") return;
  var match = evt.detail.data.match(/data-frame-id="(\d+)"/);
  if (match && list.querySelector('[data-frame-id="' + match[1] + '"]')) evt.preventDefault();
});
