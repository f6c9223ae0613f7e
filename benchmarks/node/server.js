// The Node contender of benchmarks/run.py: ws's echo server, as benchmarks/contenders/*.py serve.
//
//   node benchmarks/node/server.js --port-file FILE [--lifetime 900]
//
// Echoes every text and binary message as it came; on the path /control any text message makes
// it send a 64-byte text to every connection (the broadcast scenario). permessage-deflate off,
// messages up to 4 MiB, no pings (ws sends none of its own). Writes {"port", "pid", "about", ...}
// to the port file once it listens, and stops on SIGTERM/SIGINT, when the process that started
// it is gone, or after --lifetime seconds. ws comes from benchmarks/node/node_modules (`make
// bench` installs it there with bufferutil, ws's native masking), else from the interop tests'
// tests/interop/node_modules (without bufferutil: the port file says so).
'use strict';

const fs = require('fs');
const path = require('path');

const BCAST_TEXT = 'B'.repeat(64);
const CONTROL_PATH = '/control';
const MAX_SIZE = 4 << 20;

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

function findWs() {
  const roots = [
    path.join(__dirname, 'node_modules'),
    path.join(__dirname, '..', '..', 'tests', 'interop', 'node_modules'),
  ];
  for (const root of roots) {
    const dir = path.join(root, 'ws');
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
  }
  throw new Error('ws is not installed: run `make bench` (or npm ci in benchmarks/node)');
}

function version(dir) {
  return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
}

// What ws's lib/buffer-util.js loads: bufferutil, resolved from ws's own folder.
function bufferutil(wsDir) {
  if (process.env.WS_NO_BUFFER_UTIL) return 'without bufferutil (WS_NO_BUFFER_UTIL is set)';
  try {
    const entry = require.resolve('bufferutil', { paths: [wsDir] });
    require(entry);
    return `with bufferutil ${version(path.dirname(entry))}`;
  } catch (err) {
    return 'without bufferutil (not installed next to ws: run `make bench`)';
  }
}

function main() {
  const portFile = option('--port-file');
  if (!portFile) throw new Error('--port-file is required');
  const lifetime = Number(option('--lifetime', '900')) * 1000;
  const wsDir = findWs();
  const { WebSocketServer } = require(wsDir);
  const wss = new WebSocketServer({
    host: '127.0.0.1', port: 0, backlog: 511, maxPayload: MAX_SIZE, perMessageDeflate: false,
  });

  wss.on('connection', (ws, request) => {
    ws.on('error', () => {});
    if (request.url === CONTROL_PATH) {
      ws.on('message', (data, isBinary) => {
        if (isBinary) return;
        for (const client of wss.clients) client.send(BCAST_TEXT);
      });
    } else {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    }
  });

  wss.on('listening', () => {
    const about = `ws ${version(wsDir)} on Node ${process.version}, ${bufferutil(wsDir)}`;
    const { port } = wss.address();
    const info = { port, pid: process.pid, speedups: null, loop: 'node', source: null, about };
    fs.writeFileSync(portFile + '.tmp', JSON.stringify(info));
    fs.renameSync(portFile + '.tmp', portFile);
  });

  const parent = process.ppid;
  const stop = () => {
    wss.close();
    for (const client of wss.clients) client.terminate();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const started = Date.now();
  setInterval(() => {
    if (process.ppid !== parent || Date.now() - started > lifetime) stop();
  }, 500).unref();
}

main();
