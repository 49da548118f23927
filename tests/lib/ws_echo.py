"""ws_echo.py PORTFILE EVENTS: a WebSocket server (Debian's python3-websockets)
on a random 127.0.0.1 port, written to PORTFILE, for t_websocket.py. Each
connection's end is appended to EVENTS as a JSON line (path, close code,
bytes received).

Paths (the last segment counts, so that every location's prefix reaches
the same server):
  /ws/echo       every message back as it came (text or binary, any size)
  /ws/headers    one text message: the handshake's request fields (JSON)
  /ws/close      closes with code 4001 after the first message
  /ws/push?mb=N  sends N MiB in 1 MiB binary messages, as fast as the
                 connection takes them, then one text message "done"
  /ws/hold       reads nothing (the client's bytes pile up) until the file
                 EVENTS.gate exists, then reads on and answers the text
                 message "end" with "got BYTES"
  /ws/plain      no upgrade: a plain 403 with a body
"""

import asyncio
import http
import json
import os
import sys
import urllib.parse

import websockets

PORTFILE, EVENTS = sys.argv[1], sys.argv[2]


def event(**kw):
    with open(EVENTS, 'a') as f:
        f.write(json.dumps(kw) + '\n')


async def process_request(path, headers):
    if urllib.parse.urlsplit(path).path.endswith('/plain'):
        return http.HTTPStatus.FORBIDDEN, [('Content-Type', 'text/plain'), ('X-From', 'ws_echo')], b'no upgrade here\n'
    return None


async def handler(ws, path):
    url = urllib.parse.urlsplit(path)
    name = url.path.rsplit('/', 1)[-1]
    query = urllib.parse.parse_qs(url.query)
    got = 0
    code = None
    try:
        if name == 'echo':
            async for msg in ws:
                got += len(msg)
                await ws.send(msg)
        elif name == 'headers':
            await ws.send(json.dumps({k.lower(): v for k, v in ws.request_headers.raw_items()}))
            async for msg in ws:
                got += len(msg)
        elif name == 'close':
            msg = await ws.recv()
            got += len(msg)
            await ws.close(code=4001, reason='server says bye')
        elif name == 'push':
            mb = int(query.get('mb', ['16'])[0])
            block = os.urandom(1 << 20)
            for _ in range(mb):
                await ws.send(block)
            await ws.send('done')
            async for msg in ws:
                got += len(msg)
        elif name == 'hold':
            for _ in range(2400):
                if os.path.exists(EVENTS + '.gate'):
                    break
                await asyncio.sleep(0.05)
            async for msg in ws:
                if msg == 'end':
                    await ws.send('got %d' % got)
                else:
                    got += len(msg)
    except websockets.ConnectionClosed:
        pass
    finally:
        code = ws.close_code
        event(path=url.path, code=code, got=got)


async def main():
    async with websockets.serve(handler, '127.0.0.1', 0, max_size=None,
                                process_request=process_request, ping_interval=None,
                                max_queue=4) as server:
        port = server.sockets[0].getsockname()[1]
        tmp = PORTFILE + '.tmp'
        with open(tmp, 'w') as f:
            f.write(str(port))
        os.rename(tmp, PORTFILE)
        await asyncio.Future()


asyncio.run(main())
