// Event display of the npfm portal: hits of sample events in the xy and rz views,
// coloured by truth track or by subsystem. Data: /api/v1/datasets/ID/events (cm).
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const SIZE = 400, PAD = 24;
  const SUBSYSTEM_COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
  const root = document.getElementById("event-display");
  if (!root) { return; }
  const state = { events: [], index: 0, mode: "track" };

  function trackColour(track) {
    if (track < 0) { return "#5c6670"; }           // noise hits
    const hue = (track * 137.508) % 360;           // golden-angle spacing of hues
    return "hsl(" + hue.toFixed(1) + ",75%,60%)";
  }

  function subsystemColours(event) {
    const names = Array.from(new Set(event.subsystem)).sort();
    const map = {};
    names.forEach(function (n, i) { map[n] = SUBSYSTEM_COLOURS[i % SUBSYSTEM_COLOURS.length]; });
    return map;
  }

  function el(name, attrs) {
    const node = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  function draw(svg, us, vs, colours, xlabel, ylabel, symmetricU) {
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    let umax = 1, vmax = 1;
    us.forEach(function (u) { if (u !== null) { umax = Math.max(umax, Math.abs(u)); } });
    vs.forEach(function (v) { if (v !== null) { vmax = Math.max(vmax, Math.abs(v)); } });
    if (symmetricU) { umax = vmax = Math.max(umax, vmax); }
    const half = (SIZE - 2 * PAD) / 2, c = SIZE / 2;
    svg.appendChild(el("line", { x1: PAD, y1: c, x2: SIZE - PAD, y2: c, class: "axis" }));
    svg.appendChild(el("line", { x1: c, y1: PAD, x2: c, y2: SIZE - PAD, class: "axis" }));
    const xl = el("text", { x: SIZE - PAD, y: c - 4, class: "label", "text-anchor": "end" });
    xl.textContent = xlabel + " (±" + umax.toFixed(0) + " cm)";
    const yl = el("text", { x: c + 4, y: PAD + 10, class: "label" });
    yl.textContent = ylabel + " (±" + vmax.toFixed(0) + " cm)";
    svg.appendChild(xl); svg.appendChild(yl);
    const group = el("g", { class: "hits" });
    for (let i = 0; i < us.length; i++) {
      if (us[i] === null || vs[i] === null) { continue; }
      group.appendChild(el("circle", {
        cx: (c + us[i] / umax * half).toFixed(1), cy: (c - vs[i] / vmax * half).toFixed(1),
        r: 1.6, fill: colours[i], class: "hit" }));
    }
    svg.appendChild(group);
  }

  function render() {
    const event = state.events[state.index];
    if (!event) { return; }
    const n = event.x.length;
    const subColours = subsystemColours(event);
    const colours = [];
    for (let i = 0; i < n; i++) {
      colours.push(state.mode === "track"
        ? trackColour(event.track.length ? event.track[i] : -1)
        : subColours[event.subsystem[i]] || "#bbb");
    }
    const r = event.x.map(function (x, i) {
      if (x === null || event.y[i] === null) { return null; }
      const rho = Math.hypot(x, event.y[i]);
      return event.y[i] < 0 ? -rho : rho;           // signed radius: sign of y
    });
    draw(document.getElementById("view-xy"), event.x, event.y, colours, "x", "y", true);
    draw(document.getElementById("view-rz"), event.z, r, colours, "z", "±r", false);
    document.getElementById("event-label").textContent = "run " + event.run + " event " +
      event.event + " · " + n + " hits · " + (state.index + 1) + "/" + state.events.length;
    const legend = document.getElementById("legend");
    legend.textContent = "";
    if (state.mode === "subsystem") {
      Object.keys(subColours).forEach(function (name) {
        const item = document.createElement("span");
        const dot = document.createElement("i");
        dot.style.background = subColours[name];
        item.appendChild(dot);
        item.appendChild(document.createTextNode(name));
        legend.appendChild(item);
      });
    } else {
      legend.textContent = "one colour per truth track; grey: noise";
    }
    root.dataset.mode = state.mode;
    root.dataset.rendered = String(n);
  }

  document.getElementById("colour-mode").addEventListener("change", function (e) {
    state.mode = e.target.value; render();
  });
  document.getElementById("prev-event").addEventListener("click", function () {
    state.index = (state.index + state.events.length - 1) % state.events.length; render();
  });
  document.getElementById("next-event").addEventListener("click", function () {
    state.index = (state.index + 1) % state.events.length; render();
  });
  fetch("/api/v1/datasets/" + root.dataset.dataset + "/events?n=5")
    .then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    })
    .then(function (events) { state.events = events; render(); })
    .catch(function (err) {
      document.getElementById("event-label").textContent = "no sample events: " + err.message;
    });
}());
