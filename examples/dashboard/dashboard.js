// A live fleet table from what devices publish: mqtt.js (the browser build,
// loaded before this script as the global `mqtt`) over WebSocket, with
// read-only credentials. Subscribes to …/devices/+/metrics, …/+/state and
// …/+/status; everything shown is the newest message of each kind per device.
//
// Device-provided strings are put in the page with textContent only, never as HTML.
/* global mqtt */
(() => {
  const form = document.getElementById('connect');
  const statusEl = document.getElementById('status');
  const tbody = document.getElementById('devices');
  /** device id → { metrics, state, status } */
  const devices = new Map();
  let client;

  // Settings: the URL fragment (#user=…&pass=…&ws=…&root=…) first, then what
  // the hub says about itself (config.json), then the defaults.
  const fromHash = new URLSearchParams(location.hash.slice(1));
  const field = (name) => document.getElementById(name);
  const defaults = { ws: `ws://${location.hostname || '127.0.0.1'}:8083`, root: 'flotilla/v1' };

  fetch('config.json')
    .then((res) => (res.ok ? res.json() : {}))
    .catch(() => ({}))
    .then((hub) => {
      // Served over https, the page may only open wss:// (browsers block mixed content): the hub's TLS listener.
      if (location.protocol === 'https:' && hub.wssPort) defaults.ws = `wss://${location.hostname}:${hub.wssPort}`;
      else if (hub.wsPort) defaults.ws = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.hostname}:${hub.wsPort}`;
      if (hub.topicRoot) defaults.root = hub.topicRoot;
      field('ws').value = fromHash.get('ws') ?? defaults.ws;
      field('root').value = fromHash.get('root') ?? defaults.root;
      field('user').value = fromHash.get('user') ?? '';
      field('pass').value = fromHash.get('pass') ?? '';
      if (fromHash.has('user')) connect();
    });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    connect();
  });

  function connect() {
    if (client) client.end(true);
    devices.clear();
    render();
    const root = field('root').value.trim();
    const username = field('user').value;
    const suffix = `dashboard-${Math.random().toString(16).slice(2, 10)}`;
    const options = {
      protocolVersion: 4,
      // A service account (a viewer's API key as password) must connect as `<name>.<suffix>`;
      // a --dashboard-user may use any id nobody owns, so the same form suits both.
      clientId: /^[a-z0-9-]{1,63}$/.test(username) ? `${username}.${suffix}` : `flotilla-${suffix}`,
      clean: true,
      reconnectPeriod: 5000,
      connectTimeout: 10_000,
    };
    if (username !== '') Object.assign(options, { username, password: field('pass').value });
    setStatus('connecting…');
    const connection = mqtt.connect(field('ws').value.trim(), options);
    client = connection;
    let lastError = '';
    // Events of a connection the user has replaced (a second Connect) change nothing.
    const on = (event, handler) => connection.on(event, (...args) => client === connection && handler(...args));
    on('connect', () => {
      lastError = '';
      setStatus(`connected${username ? ` as ${username}` : ''}`, 'connected');
      const filters = ['metrics', 'state', 'status'].map((channel) => `${root}/devices/+/${channel}`);
      connection.subscribe(filters, { qos: 0 }, (err, granted) => {
        const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
        if (err || refused.length > 0) setStatus(`subscription refused: ${err?.message ?? refused.join(', ')}`, 'error');
      });
    });
    on('message', (topic, payload) => onMessage(root, topic, payload));
    on('reconnect', () => setStatus(`reconnecting…${lastError ? ` (${lastError})` : ''}`));
    on('close', () => {
      if (!connection.reconnecting) setStatus(lastError ? `disconnected: ${lastError}` : 'disconnected', 'error');
    });
    on('error', (err) => {
      lastError = err.message;
      setStatus(`error: ${err.message}`, 'error');
      // A refused login (CONNACK 4: bad user name or password, 5: not authorized) will not get better by retrying.
      if (err.code === 4 || err.code === 5) connection.end(true);
    });
  }

  function onMessage(root, topic, payload) {
    const prefix = `${root}/devices/`;
    if (!topic.startsWith(prefix)) return;
    const [id, channel] = topic.slice(prefix.length).split('/');
    let doc;
    try {
      doc = JSON.parse(new TextDecoder().decode(payload));
    } catch {
      return; // not JSON: not a Flotilla message
    }
    const entry = devices.get(id) ?? {};
    entry[channel] = doc;
    devices.set(id, entry);
    render();
  }

  function render() {
    const rows = [...devices.entries()].sort(([a], [b]) => a.localeCompare(b));
    tbody.replaceChildren(...rows.map(([id, d]) => row(id, d)));
  }

  function row(id, { metrics, state, status }) {
    const tr = document.createElement('tr');
    const online = status ? status.online : state !== undefined;
    if (!online) tr.className = 'stale';
    const host = metrics?.host;
    const root = host?.disks?.find((disk) => disk.name === 'root');
    tr.append(
      cell(id),
      cell(online ? 'online' : 'offline', online ? 'online' : 'offline'),
      host ? cell(`${host.cpuPercent.toFixed(1)} %`, 'num', host.cpuPercent / 100) : cell('–'),
      host ? cell(`${bytes(host.memUsedBytes)} / ${bytes(host.memTotalBytes)}`, 'num', host.memUsedBytes / host.memTotalBytes) : cell('–'),
      root ? cell(`${bytes(root.usedBytes)} / ${bytes(root.totalBytes)}`, 'num', root.usedBytes / root.totalBytes) : cell('–'),
      apps(state?.apps ?? []),
      cell(metrics ? new Date(metrics.ts).toLocaleTimeString() : '–', 'num'),
    );
    return tr;
  }

  function cell(text, className, fraction) {
    const td = document.createElement('td');
    if (className) td.className = className;
    if (fraction !== undefined && Number.isFinite(fraction)) {
      const bar = document.createElement('span');
      bar.className = 'bar';
      const fill = document.createElement('span');
      fill.style.width = `${Math.min(100, Math.max(0, fraction * 100)).toFixed(0)}%`;
      bar.append(fill);
      td.append(bar);
    }
    td.append(document.createTextNode(text));
    return td;
  }

  function apps(list) {
    const td = document.createElement('td');
    if (list.length === 0) td.textContent = '–';
    list.forEach((app, i) => {
      if (i > 0) td.append(document.createTextNode(', '));
      const span = document.createElement('span');
      span.className = `phase-${app.phase}`;
      span.textContent = `${app.name} r${app.revision} ${app.phase}`;
      if (app.message) span.title = app.message;
      td.append(span);
    });
    return td;
  }

  function bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i += 1;
    }
    return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
  }

  function setStatus(text, kind = '') {
    statusEl.textContent = text;
    statusEl.className = kind;
  }
})();
