"""A webhook receiver for the tests: every delivery is checked with the `standardwebhooks`
package (the reference implementation of Standard Webhooks), independently of Rampart.

    webhook_receiver.py LOG SECRETS_JSON FAIL_FIRST CHECK [DELAY_MS]

Listens on 127.0.0.1 (a free port, printed as the first line of stdout), and appends one JSON
line per delivery to LOG: {"id", "timestamp", "type", "answered", "verified": [i, ...]}, where
`verified` lists the indexes of the SECRETS_JSON secrets under which the delivery verifies.
CHECK is `verify` (the package's `Webhook.verify`: signature and a timestamp within five
minutes of now) or `sign` (the signature only, recomputed with the package's `Webhook.sign`:
for a server whose clock a test has moved ahead). The first FAIL_FIRST deliveries of each
webhook-id are answered 500, later ones 204, each after DELAY_MS (default 0).
"""

import base64
import datetime
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

LOG, SECRETS, FAIL_FIRST, CHECK = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
DELAY = int(sys.argv[5]) / 1000 if len(sys.argv) > 5 else 0.0
seen: dict[str, int] = {}
lock = threading.Lock()


def verified_by(body: bytes, headers: dict[str, str]) -> list[int]:
    out = []
    for i, secret in enumerate(SECRETS):
        wh = Webhook(secret)
        if CHECK == "verify":
            try:
                wh.verify(body, headers)
                out.append(i)
            except WebhookVerificationError:
                pass
        else:
            ts = datetime.datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=datetime.timezone.utc)
            expected = wh.sign(headers["webhook-id"], ts, body.decode()).split(",", 1)[1]
            given = [s.split(",", 1)[1] for s in headers["webhook-signature"].split(" ") if s.startswith("v1,")]
            if any(hmac.compare_digest(base64.b64decode(expected), base64.b64decode(g)) for g in given):
                out.append(i)
    return out


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        msg_id = headers.get("webhook-id", "")
        with lock:
            seen[msg_id] = seen.get(msg_id, 0) + 1
            answer = 500 if seen[msg_id] <= FAIL_FIRST else 204
            try:
                kind = json.loads(body).get("type")
            except ValueError:
                kind = None
            line = {
                "id": msg_id,
                "timestamp": headers.get("webhook-timestamp"),
                "type": kind,
                "answered": answer,
                "verified": verified_by(body, headers),
                "signatures": len(headers.get("webhook-signature", "").split(" ")),
                "body": json.loads(body) if kind else None,
            }
            with open(LOG, "a") as f:
                f.write(json.dumps(line) + "\n")
        time.sleep(DELAY)
        self.send_response(answer)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
