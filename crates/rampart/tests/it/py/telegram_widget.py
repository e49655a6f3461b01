"""The Telegram Login Widget's signature, written from Telegram's page alone
(https://core.telegram.org/widgets/login#checking-authorization), with the standard library's
hashlib and hmac: an implementation independent of Rampart's, to sign the payloads the
integration tests present.

usage: telegram_widget.py BOT_TOKEN FIELDS_JSON
prints FIELDS_JSON with its "hash" added (the fields' values are signed as their text)
"""

import hashlib
import hmac
import json
import sys


def sign(bot_token: str, fields: dict) -> str:
    data_check_string = "\n".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "hash")
    secret_key = hashlib.sha256(bot_token.encode()).digest()
    return hmac.new(secret_key, data_check_string.encode(), hashlib.sha256).hexdigest()


def main() -> None:
    bot_token, fields = sys.argv[1], json.loads(sys.argv[2])
    fields["hash"] = sign(bot_token, fields)
    print(json.dumps(fields))


if __name__ == "__main__":
    main()
