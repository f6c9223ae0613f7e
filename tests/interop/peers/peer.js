// A scriptable WebSocket peer for wsevents' interop tests, built on a real Node library
// (npm `ws` or `nodejs-websocket`, versions pinned in ../package-lock.json).
//
//   node peer.js server <ws|nodejs-websocket> [--port N | --unix PATH] [--protocols a,b] [--echo] [--deflate] [--verbose]
//   node peer.js client <ws|nodejs-websocket> <url> [--protocols a,b] [--echo] [--deflate] [--verbose]
//
// A server listens on 127.0.0.1, port 0 (or --port N; or, ws only, on the Unix socket --unix PATH
// through an http.Server, port 0 in "listening"), and handles one connection at a time: commands act on
// the most recent one. With --protocols it accepts the client's most preferred protocol that is
// in the list (nodejs-websocket: validProtocols; ws: handleProtocols). Without --protocols each
// library does what it does by default: nodejs-websocket agrees on none, ws on the client's first.
// --echo sends every text and binary message back (binary as one message). --deflate offers or
// accepts permessage-deflate (ws only; nodejs-websocket has no extensions).
//
// Commands arrive as JSON lines on stdin, events leave as JSON lines on stdout.
//   events:
//     {"event":"listening","port":N}                                    (server only, first line)
//     {"event":"connect","protocol":str|null,"path":str|null,"headers":{...},"extensions":str}
//         server: the request's path and (lower-cased) headers; client: the path it asked for and
//         the response's headers
//     {"event":"text","data":str}
//     {"event":"binary","length":N,"sha256":hex}                        (whole message)
//     {"event":"pong","data":str}
//     {"event":"close","code":int|null,"reason":str,"local":bool}
//         local: nodejs-websocket emitted it from close() (ours, or its own on a protocol error),
//         before any answer from the other side; ws is never local (it reports the code of the
//         close frame it received, or 1006, once the TCP connection is closed)
//     {"event":"error","message":str}
//     --verbose adds {"event":"ping","data":str} (ws only: nodejs-websocket has no ping event),
//     {"event":"socket_end"} (the other side's FIN) and {"event":"socket_close"} (TCP closed).
//   commands:
//     {"op":"send_text","data":str}
//     {"op":"send_binary_pattern","length":N}                           one message, one frame
//     {"op":"send_binary_stream","length":N,"chunk":K[,"fragmentation":F]}
//         nodejs-websocket: beginBinary(), K-byte writes, end(); it sends a frame each time F bytes
//         (default 512 KiB: setBinaryFragmentation) have gathered, so a stream shorter than F is a
//         single unfragmented frame. ws: one frame per K-byte chunk.
//     {"op":"ping","data":str}
//     {"op":"close","code":int|null,"reason":str|null}                  null code: close()
//     {"op":"terminate"}                                                 drop TCP, no close frame
//     {"op":"exit"}
// Binary payloads follow the pattern byte[i] = (i * 31 + 7) & 0xff.
// The peer exits when stdin ends, on "exit", and in any case after 60 s.
'use strict'

const crypto = require('crypto')
const readline = require('readline')

const [role, lib, ...rest] = process.argv.slice(2)
const flags = { protocols: null, echo: false, deflate: false, verbose: false, url: null, port: 0, unix: null }
for (let i = 0; i < rest.length; i++) {
  if (rest[i] === '--protocols') flags.protocols = (rest[++i] || '').split(',').filter((p) => p)
  else if (rest[i] === '--port') flags.port = Number(rest[++i])
  else if (rest[i] === '--unix') flags.unix = rest[++i]
  else if (rest[i] === '--echo') flags.echo = true
  else if (rest[i] === '--deflate') flags.deflate = true
  else if (rest[i] === '--verbose') flags.verbose = true
  else if (flags.url === null && !rest[i].startsWith('--')) flags.url = rest[i]
  else fail('unknown argument ' + rest[i])
}

function out (event) { process.stdout.write(JSON.stringify(event) + '\n') }
function fail (message) { out({ event: 'error', message }); process.exit(2) }
function pattern (n) {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff
  return b
}
function sha256 (b) { return crypto.createHash('sha256').update(b).digest('hex') }
function errorText (err) { return String((err && err.message) || err) }
function pickProtocol (offered) {
  for (const p of offered) if (flags.protocols.includes(p)) return p
  return null
}
// The request path of the client's URL (ws+unix:///path/to.sock:/resource names it after the ':').
function urlPath (url) {
  const u = new URL(url)
  const path = u.protocol.endsWith('+unix:') ? (u.pathname.split(':')[1] || '/') : u.pathname
  return path + u.search
}
function watchSocket (socket) {
  if (!flags.verbose || !socket) return
  socket.on('end', () => out({ event: 'socket_end' }))
  socket.on('close', () => out({ event: 'socket_close' }))
}

if (role !== 'server' && role !== 'client') fail('usage: peer.js server|client ws|nodejs-websocket [url] [flags]')
if (role === 'client' && !flags.url) fail('a client needs a url')

// A stuck peer must never outlive its test.
setTimeout(() => { out({ event: 'error', message: 'peer self-destruct after 60 s' }); process.exit(3) }, 60000).unref()

// The current connection, wrapped: {sendText, sendBinary, stream, ping, close, terminate}.
let conn = null

function wrapWs (ws, req) {
  let responseHeaders = null
  ws.on('upgrade', (res) => { responseHeaders = res.headers })
  ws.on('message', (data, isBinary) => {
    if (Array.isArray(data)) data = Buffer.concat(data)
    if (isBinary) {
      out({ event: 'binary', length: data.length, sha256: sha256(data) })
      if (flags.echo) ws.send(data, { binary: true })
    } else {
      const text = data.toString('utf8')
      out({ event: 'text', data: text })
      if (flags.echo) ws.send(text)
    }
  })
  ws.on('ping', (data) => { if (flags.verbose) out({ event: 'ping', data: data.toString('utf8') }) })
  ws.on('pong', (data) => out({ event: 'pong', data: data.toString('utf8') }))
  ws.on('close', (code, reason) => out({ event: 'close', code, reason: reason.toString('utf8'), local: false }))
  ws.on('error', (err) => out({ event: 'error', message: errorText(err) }))
  const onOpen = () => {
    watchSocket(ws._socket)
    out({
      event: 'connect',
      protocol: ws.protocol || null,
      path: req ? req.url : urlPath(flags.url),
      headers: req ? req.headers : responseHeaders,
      extensions: ws.extensions || ''
    })
  }
  if (ws.readyState === 1) onOpen(); else ws.on('open', onOpen)
  return {
    sendText: (s) => ws.send(s),
    sendBinary: (b) => ws.send(b, { binary: true }),
    stream: (n, chunk) => {
      const data = pattern(n)
      if (n === 0) ws.send(data, { binary: true })
      for (let i = 0; i < n; i += chunk) {
        ws.send(data.subarray(i, Math.min(n, i + chunk)), { binary: true, fin: i + chunk >= n })
      }
    },
    ping: (s) => ws.ping(Buffer.from(s, 'utf8')),
    close: (code, reason) => (code == null ? ws.close() : ws.close(code, reason == null ? '' : reason)),
    terminate: () => ws.terminate()
  }
}

function wrapNodejsWebsocket (nws, c) {
  let closing = 0 // > 0 while c.close() runs: its "close" event is local
  const close = c.close
  c.close = function (code, reason) {
    closing++
    try { return close.call(this, code, reason) } finally { closing-- }
  }
  c.on('text', (s) => {
    out({ event: 'text', data: s })
    if (flags.echo) c.sendText(s)
  })
  c.on('binary', (inStream) => {
    const parts = []
    inStream.on('data', (chunk) => parts.push(chunk))
    inStream.on('end', () => {
      const data = Buffer.concat(parts)
      out({ event: 'binary', length: data.length, sha256: sha256(data) })
      if (flags.echo) c.sendBinary(data)
    })
  })
  c.on('pong', (data) => out({ event: 'pong', data: String(data) }))
  c.on('close', (code, reason) => out({
    event: 'close', code: code == null ? null : code, reason: reason == null ? '' : String(reason), local: closing > 0
  }))
  c.on('error', (err) => out({ event: 'error', message: errorText(err) }))
  const onConnect = () => {
    watchSocket(c.socket)
    out({ event: 'connect', protocol: c.protocol || null, path: c.path, headers: c.headers, extensions: '' })
  }
  // A server-side connection is handed over on its "connect"; a client's comes later.
  if (c.readyState === c.OPEN) onConnect(); else c.once('connect', onConnect)
  return {
    sendText: (s) => c.sendText(s),
    sendBinary: (b) => c.sendBinary(b),
    stream: (n, chunk, fragmentation) => {
      if (fragmentation) nws.setBinaryFragmentation(fragmentation)
      const data = pattern(n)
      const s = c.beginBinary()
      if (!s) return // beginBinary() emitted an error
      for (let i = 0; i < n; i += chunk) s.write(data.subarray(i, Math.min(n, i + chunk)))
      s.end()
    },
    ping: (s) => c.sendPing(s),
    close: (code, reason) => (code == null ? c.close() : c.close(code, reason == null ? '' : reason)),
    terminate: () => c.socket.destroy()
  }
}

function start () {
  if (lib === 'ws') {
    const { WebSocketServer, WebSocket } = require('ws')
    if (role === 'server') {
      const options = { host: '127.0.0.1', port: flags.port, perMessageDeflate: flags.deflate }
      if (flags.protocols) options.handleProtocols = (offered) => pickProtocol(offered) || false
      let http = null
      if (flags.unix) {
        http = require('http').createServer()
        delete options.host
        delete options.port
        options.server = http
      }
      const wss = new WebSocketServer(options)
      if (http) http.listen(flags.unix, () => out({ event: 'listening', port: 0, path: flags.unix }))
      else wss.on('listening', () => out({ event: 'listening', port: wss.address().port }))
      wss.on('connection', (ws, req) => { conn = wrapWs(ws, req) })
      wss.on('error', (err) => out({ event: 'error', message: errorText(err) }))
    } else {
      const ws = new WebSocket(flags.url, flags.protocols || [], { perMessageDeflate: flags.deflate })
      conn = wrapWs(ws, null)
    }
  } else if (lib === 'nodejs-websocket') {
    const nws = require('nodejs-websocket')
    if (flags.deflate) fail('nodejs-websocket has no permessage-deflate')
    if (flags.unix) fail('--unix: only with ws')
    if (role === 'server') {
      const options = {}
      if (flags.protocols) options.validProtocols = flags.protocols
      // The callback runs on the connection's "connect", once the handshake is answered.
      const server = nws.createServer(options, (c) => { conn = wrapNodejsWebsocket(nws, c) })
      server.on('error', (err) => out({ event: 'error', message: errorText(err) }))
      server.listen(flags.port, '127.0.0.1', () => out({ event: 'listening', port: server.socket.address().port }))
    } else {
      const options = {}
      if (flags.protocols) options.protocols = flags.protocols
      conn = wrapNodejsWebsocket(nws, nws.connect(flags.url, options))
    }
  } else {
    fail('unknown library ' + lib)
  }
}

function command (line) {
  let cmd
  try {
    cmd = JSON.parse(line)
  } catch (err) {
    out({ event: 'error', message: 'bad command line: ' + errorText(err) })
    return
  }
  if (cmd.op === 'exit') process.exit(0)
  if (!conn) { out({ event: 'error', message: 'no connection for ' + cmd.op }); return }
  try {
    if (cmd.op === 'send_text') conn.sendText(cmd.data)
    else if (cmd.op === 'send_binary_pattern') conn.sendBinary(pattern(cmd.length))
    else if (cmd.op === 'send_binary_stream') conn.stream(cmd.length, cmd.chunk || 65536, cmd.fragmentation)
    else if (cmd.op === 'ping') conn.ping(cmd.data == null ? '' : cmd.data)
    else if (cmd.op === 'close') conn.close(cmd.code, cmd.reason)
    else if (cmd.op === 'terminate') conn.terminate()
    else out({ event: 'error', message: 'unknown op ' + cmd.op })
  } catch (err) {
    out({ event: 'error', message: errorText(err) })
  }
}

try {
  start()
} catch (err) { // e.g. ws throws SyntaxError on a malformed URL or subprotocol
  fail(errorText(err))
}
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim()) command(line)
}).on('close', () => setTimeout(() => process.exit(0), 100))
