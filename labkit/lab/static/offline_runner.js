// Runs an anywidget in an offline HTML report, with no kernel (inlined by labkit.lab.report.freeze, one copy per
// offline widget output, as a module script).
//
// Each `<div class="labkit-offline-widget" data-labkit-state="ID">` not yet started gets: a model object over the
// state recorded in the `<script type="application/json" id="ID">` element (binary buffers decoded to DataViews,
// `offline` set to true, `set` fires `change:<name>` locally, nothing is sent anywhere), the widget's ES module
// imported from a blob URL, and `render` called on the div. The first copy to run starts every widget on the
// page; the others find none left. Each widget starts on its own: one failing does not stop the rest.

function recordedState(dataId) {
  const spec = JSON.parse(document.getElementById(dataId).textContent);
  const state = spec.state;
  for (const buf of spec.buffers) {
    const bytes = Uint8Array.from(atob(buf.data), (c) => c.charCodeAt(0));
    let holder = state;
    for (const step of buf.path.slice(0, -1)) holder = holder[step];
    holder[buf.path[buf.path.length - 1]] = new DataView(bytes.buffer);
  }
  state.offline = true;
  return state;
}

function localModel(state) {
  const listeners = new Map();
  return {
    get: (name) => state[name],
    set(name, value) {
      state[name] = value;
      for (const f of listeners.get("change:" + name) || []) f();
    },
    on(event, f) { listeners.set(event, [...(listeners.get(event) || []), f]); },
    off(event, f) {
      if (!event) listeners.clear();
      else if (!f) listeners.delete(event);
      else listeners.set(event, (listeners.get(event) || []).filter((g) => g !== f));
    },
    save_changes() {},
    send() {},
  };
}

async function start(el) {
  const state = recordedState(el.dataset.labkitState);
  const model = localModel(state);
  const url = URL.createObjectURL(new Blob([state._esm], { type: "text/javascript" }));
  let widget = (await import(url)).default;
  if (typeof widget === "function") widget = await widget();
  if (widget.initialize) await widget.initialize({ model });
  await widget.render({ model, el });
}

for (const el of document.querySelectorAll(".labkit-offline-widget[data-labkit-state]:not([data-labkit-started])")) {
  el.dataset.labkitStarted = "true";
  start(el);
}
