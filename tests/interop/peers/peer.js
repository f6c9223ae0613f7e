// A scriptable WebSocket peer for wsevents' interop tests, built on a real Node library.
//
//   node peer.js server <ws|nodejs-websocket> [--protocols a,b] [--echo] [--deflate]
//   node peer.js client <ws|nodejs-websocket> <url> [--protocols a,b] [--echo] [--deflate]
//
// Commands arrive as JSON lines on stdin; events leave as JSON lines on stdout:
//   events:   listening {port} | connect {protocol, path, headers, extensions} | text {data}
//             | binary {length, sha256} | pong {data} | close {code, reason} | error {message}
//   commands: send_text {data} | send_binary_pattern {length} | send_binary_stream {length, chunk}
//             | ping {data} | close {code, reason} | exit
// Binary payloads follow the pattern byte[i] = (i * 31 + 7) & 0xff.
'use strict'

const crypto = require('crypto')
const readline = require('readline')

const [role, lib, ...rest] = process.argv.slice(2)
const flags = { protocols: null, echo: false, deflate: false, url: null }
for (let i = 0; i < rest.length; i++) {
  if (rest[i] === '--protocols') flags.protocols = rest[++i].split(',')
  else if (rest[i] === '--echo') flags.echo = true
  else if (rest[i] === '--deflate') flags.deflate = true
  else flags.url = rest[i]
}

function out (event) { process.stdout.write(JSON.stringify(event) + '\n') }
function pattern (n) {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff
  return b
}
function sha256 (b) { return crypto.createHash('sha256').update(b).digest('hex') }

// A stuck peer must never outlive its test.
setTimeout(() => { out({ event: 'error', message: 'peer self-destruct after 60 s' }); process.exit(3) }, 60000).unref()

let conn = null // the current connection, wrapped: {sendText, sendBinary, stream, ping, close}

function wrapWs (ws, req) {
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      out({ event: 'binary', length: data.length, sha256: sha256(data) })
      if (flags.echo) ws.send(data, { binary: true })
    } else {
      out({ event: 'text', data: data.toString('utf8') })
      if (flags.echo) ws.send(data.toString('utf8'))
    }
  })
  ws.on('pong', (data) => out({ event: 'pong', data: data.toString('utf8') }))
  ws.on('close', (code, reason) => out({ event: 'close', code, reason: reason.toString('utf8') }))
  ws.on('error', (err) => out({ event: 'error', message: String(err && err.message) }))
  const onOpen = () => out({
    event: 'connect',
    protocol: ws.protocol || null,
    path: req ? req.url : null,
    headers: req ? req.headers : null,
    extensions: ws.extensions || ''
  })
  if (ws.readyState === 1) onOpen(); else ws.on('open', onOpen)
  return {
    sendText: (s) => ws.send(s),
    sendBinary: (b) => ws.send(b, { binary: true }),
    stream: (n, chunk) => {
      const data = pattern(n)
      for (let i = 0; i < n; i += chunk) {
        ws.send(data.subarray(i, Math.min(n, i + chunk)), { binary: true, fin: i + chunk >= n })
      }
    },
    ping: (s) => ws.ping(Buffer.from(s, 'utf8')),
    close: (code, reason) => (code == null ? ws.close() : ws.close(code, reason || ''))
  }
}

function wrapNodejsWebsocket (c) {
  c.on('text', (s) => {
    out({ event: 'text', data: s })
    if (flags.echo) c.sendText(s)
  })
  c.on('binary', (inStream) => {
    const parts = []
    inStream.on('readable', () => {
      let chunk
      while ((chunk = inStream.read()) !== null) parts.push(chunk)
    })
    inStream.on('end', () => {
      const data = Buffer.concat(parts)
      out({ event: 'binary', length: data.length, sha256: sha256(data) })
      if (flags.echo) c.sendBinary(data)
    })
  })
  c.on('pong', (data) => out({ event: 'pong', data: String(data) }))
  c.on('close', (code, reason) => out({ event: 'close', code, reason: reason == null ? '' : String(reason) }))
  c.on('error', (err) => out({ event: 'error', message: String(err && err.message) }))
  const onConnect = () => out({
    event: 'connect', protocol: c.protocol || null, path: c.path, headers: c.headers, extensions: ''
  })
  c.on('connect', onConnect)
  return {
    sendText: (s) => c.sendText(s),
    sendBinary: (b) => c.sendBinary(b),
    stream: (n, chunk) => {
      const data = pattern(n)
      const s = c.beginBinary()
      for (let i = 0; i < n; i += chunk) s.write(data.subarray(i, Math.min(n, i + chunk)))
      s.end()
    },
    ping: (s) => c.sendPing(s),
    close: (code, reason) => (code == null ? c.close() : c.close(code, reason || ''))
  }
}

function start () {
  if (lib === 'ws') {
    const { WebSocketServer, WebSocket } = require('ws')
    if (role === 'server') {
      const options = { host: '127.0.0.1', port: 0, perMessageDeflate: flags.deflate }
      if (flags.protocols) {
        options.handleProtocols = (offered) => {
          for (const p of offered) if (flags.protocols.includes(p)) return p
          return false
        }
      }
      const wss = new WebSocketServer(options)
      wss.on('listening', () => out({ event: 'listening', port: wss.address().port }))
      wss.on('connection', (ws, req) => { conn = wrapWs(ws, req) })
    } else {
      const ws = new WebSocket(flags.url, flags.protocols || [], { perMessageDeflate: flags.deflate })
      conn = wrapWs(ws, null)
    }
  } else if (lib === 'nodejs-websocket') {
    const nws = require('nodejs-websocket')
    if (role === 'server') {
      const options = {}
      if (flags.protocols) options.validProtocols = flags.protocols
      const server = nws.createServer(options, (c) => { conn = wrapNodejsWebsocket(c) })
      // nodejs-websocket emits the server's "connection" from the connection's own "connect".
      server.on('connection', (c) => out({
        event: 'connect', protocol: c.protocol || null, path: c.path, headers: c.headers, extensions: ''
      }))
      server.listen(0, '127.0.0.1', () => out({ event: 'listening', port: server.socket.address().port }))
    } else {
      const options = {}
      if (flags.protocols) options.protocols = flags.protocols
      const c = nws.connect(flags.url, options)
      conn = wrapNodejsWebsocket(c)
    }
  } else {
    out({ event: 'error', message: 'unknown library ' + lib })
    process.exit(2)
  }
}

function command (cmd) {
  if (cmd.op === 'exit') process.exit(0)
  if (!conn) { out({ event: 'error', message: 'no connection for ' + cmd.op }); return }
  try {
    if (cmd.op === 'send_text') conn.sendText(cmd.data)
    else if (cmd.op === 'send_binary_pattern') conn.sendBinary(pattern(cmd.length))
    else if (cmd.op === 'send_binary_stream') conn.stream(cmd.length, cmd.chunk)
    else if (cmd.op === 'ping') conn.ping(cmd.data || '')
    else if (cmd.op === 'close') conn.close(cmd.code, cmd.reason)
    else out({ event: 'error', message: 'unknown op ' + cmd.op })
  } catch (err) {
    out({ event: 'error', message: String(err && err.message) })
  }
}

start()
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim()) command(JSON.parse(line))
}).on('close', () => setTimeout(() => process.exit(0), 100))
