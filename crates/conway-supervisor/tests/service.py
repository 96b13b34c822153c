"""A small service for the supervisor's tests: answers on $PORT.

GET /env answers the environment as JSON, GET /argv the command line, anything else
the instance's id. Arguments: `ignore-term` ignores SIGTERM; `slow-start SECONDS`
waits before listening.
"""

import http.server
import json
import os
import signal
import sys
import time

args = sys.argv[1:]
if "ignore-term" in args:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if "slow-start" in args:
    time.sleep(float(args[args.index("slow-start") + 1]))


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.endswith("/env"):
            body = json.dumps(dict(os.environ))
        elif self.path.endswith("/argv"):
            body = json.dumps(sys.argv)
        else:
            body = os.environ.get("CONWAY_INSTANCE", "") + "\n"
        data = body.encode()
        self.send_response(200)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


port = int(os.environ["PORT"])
server = http.server.HTTPServer(("127.0.0.1", port), Handler)
print(f"listening on {port}", flush=True)
server.serve_forever()
