"""A browser chat in one file: the page and the WebSocket on one port, in the events style.

python samples/chat/chat.py [port]      # then open http://127.0.0.1:8000/ in two tabs

The first message of a client is its nickname; later ones go to everyone as "[nick] text".
(`wsevents serve` runs a fuller version of this: src/wsevents/demo/.)
"""

import sys

import wsevents

PAGE = b"""<!doctype html>
<meta charset="utf-8"><title>chat</title>
<ul id="log"></ul>
<form id="form"><input id="input" placeholder="nickname, then messages" autofocus><button>Send</button></form>
<script>
const ws = new WebSocket("ws://" + location.host + "/");
ws.onmessage = (event) => {
  const li = document.createElement("li");
  li.textContent = event.data;
  document.getElementById("log").appendChild(li);
};
document.getElementById("form").onsubmit = (event) => {
  event.preventDefault();
  ws.send(document.getElementById("input").value);
  document.getElementById("input").value = "";
};
</script>
"""

nicknames = {}  # connection -> nickname, for those who have chosen one


def http_handler(request):
    """Requests that are not WebSocket upgrades: the page, or 404."""
    if request.path == "/":
        return 200, {"Content-Type": "text/html; charset=utf-8"}, PAGE
    return 404, {}, b"not found\n"


def on_connection(conn):
    def on_text(text):
        if conn not in nicknames:
            nicknames[conn] = text.strip() or "anonymous"
            broadcast(f"{nicknames[conn]} entered")
        else:
            broadcast(f"[{nicknames[conn]}] {text}")

    def on_close(code, reason):
        if conn in nicknames:
            broadcast(f"{nicknames.pop(conn)} left")

    conn.on("text", on_text)
    conn.on("close", on_close)


def broadcast(text):
    server.broadcast(text, exclude=[c for c in server.connections if c not in nicknames])


def on_listening():
    print(f"chat: open http://127.0.0.1:{server.port}/", flush=True)


port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
server = wsevents.create_server(on_connection, http_handler=http_handler)
server.listen(port, "127.0.0.1", on_listening)
wsevents.run()  # until Ctrl-C / SIGTERM, which close every connection with 1001
