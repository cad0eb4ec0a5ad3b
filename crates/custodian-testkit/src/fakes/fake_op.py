#!@@PYTHON@@
# A fake `op` (1Password CLI) for the adapter's tests, behaving as 1Password documents
# the real one: values on stdout, a non-zero exit and `[ERROR] <date> <time> <message>` on
# stderr on failure.
#
# The adapter clears the environment, so the test writes this script per test with its
# state directory baked in (@@STATE_DIR@@): `state.json` holds the accepted token, the
# secrets (reference -> value, matched case-insensitively like op) and a mode; every
# invocation appends one JSON line to `invocations.jsonl` (argv, pid, the environment's
# names, the values of the non-secret ones, whether the token matched; never the token).
#
# Subcommands: `read [-n|--no-newline] REF`, `inject (-i|--in-file) PATH`,
# `vault list --format json`.
# Modes: "ok", "rate_limit" (429), "hang" (sleeps past any timeout), "broken" (prints a
# value to stdout and the token to stderr, then fails with an unknown error), "flood"
# (prints to stdout without end, until its reader closes the pipe).
import json
import os
import re
import sys
import time

STATE_DIR = "@@STATE_DIR@@"
STAMP = "[ERROR] 2026/11/20 10:00:00"
NON_SECRET_ENV = {"HOME", "OP_CONFIG_DIR", "OP_CACHE", "OP_BIOMETRIC_UNLOCK_ENABLED"}


def fail(message):
    sys.stderr.write(f"{STAMP} {message}\n")
    sys.exit(1)


def received_environment():
    # /proc/self/environ is the environment exec gave us: Python itself adds LC_CTYPE to
    # os.environ when it coerces the C locale (PEP 538), which op never received.
    try:
        with open("/proc/self/environ", "rb") as f:
            pairs = [p.split(b"=", 1) for p in f.read().split(b"\0") if p]
        return {k.decode(): v.decode(errors="replace") for k, v in pairs}
    except OSError:
        return dict(os.environ)


def main():
    with open(os.path.join(STATE_DIR, "state.json")) as f:
        state = json.load(f)
    environ = received_environment()
    token = environ.get("OP_SERVICE_ACCOUNT_TOKEN")
    with open(os.path.join(STATE_DIR, "invocations.jsonl"), "a") as log:
        log.write(json.dumps({
            "argv": sys.argv[1:],
            "pid": os.getpid(),
            "env_names": sorted(environ.keys()),
            "env": {k: v for k, v in environ.items() if k in NON_SECRET_ENV},
            "token_matched": token == state["token"],
        }) + "\n")

    mode = state.get("mode", "ok")
    if mode == "hang":
        time.sleep(600)
    if token is None:
        fail("no account found for filter: no signed in accounts")
    if not token.startswith("ops_"):
        fail("error initializing client: Validation: (failed to session.DecodeSACredentials), "
             "Server: (failed to DecodeSACredentials), failed to parseToken, format is invalid")
    if token != state["token"]:
        fail("(401) Unauthorized: You aren't authorized to perform this action.")
    if mode == "rate_limit":
        fail("(429) Too Many Requests: You've reached the maximum number of this type of requests "
             "this service account is allowed to make. Please retry in 58 minutes or try other requests.")
    secrets = {k.lower(): v for k, v in state["secrets"].items()}
    if mode == "flood":
        chunk = "x" * 65536
        while True:
            sys.stdout.write(chunk)
    if mode == "broken":
        sys.stdout.write(next(iter(secrets.values()), ""))
        sys.stdout.flush()
        fail(f"unexpected failure talking to my.1password.com with token {token}")

    args = sys.argv[1:]
    if args[:1] == ["read"]:
        rest = [a for a in args[1:] if a not in ("-n", "--no-newline")]
        if len(rest) != 1:
            fail("expected exactly one secret reference")
        value = resolve(secrets, rest[0], f"could not read secret '{rest[0]}': ")
        newline = "" if ("-n" in args or "--no-newline" in args) else "\n"
        sys.stdout.write(value + newline)
    elif args[:1] == ["inject"]:
        if len(args) != 3 or args[1] not in ("-i", "--in-file"):
            fail("expected --in-file PATH")
        with open(args[2]) as f:
            template = f.read()
        # Enclosed references: {{ op://... }} with the template syntax's characters.
        pattern = re.compile(r"\{\{\s*(op://[A-Za-z0-9_.\-/?=]+)\s*\}\}")
        # Resolve all first: inject prints nothing when a reference fails, and its error
        # does not quote the reference.
        values = {m.group(1): resolve(secrets, m.group(1), "") for m in pattern.finditer(template)}
        sys.stdout.write(pattern.sub(lambda m: values[m.group(1)], template))
    elif args[:2] == ["vault", "list"]:
        vaults = sorted({ref.split("/")[2] for ref in secrets})
        sys.stdout.write(json.dumps([{"id": f"id{i:024d}", "name": v} for i, v in enumerate(vaults)]) + "\n")
    else:
        fail(f"unknown command \"{' '.join(args[:1])}\" for \"op\"")


def resolve(secrets, reference, prefix):
    if reference.lower() in secrets:
        return secrets[reference.lower()]
    path = reference[len("op://"):].split("?")[0].split("/")
    if len(path) not in (3, 4):
        fail(prefix + "invalid secret reference: too many '/': secret references should match "
             "op://<vault>/<item>[/<section>]/<field>")
    vault, item, field = path[0], path[1], path[-1]
    known = [k[len("op://"):].split("/") for k in secrets]
    if not any(k[0] == vault.lower() for k in known):
        fail(prefix + f"\"{vault}\" isn't a vault in this account. Specify the vault with its ID or name.")
    if not any(k[0] == vault.lower() and k[1] == item.lower() for k in known):
        fail(prefix + f"\"{item}\" isn't an item in the \"{vault}\" vault. "
             "Specify the item with its UUID, name, or domain.")
    fail(prefix + f"item '{vault}/{item}' does not have a field '{field}'")


main()
