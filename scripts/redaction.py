#!/usr/bin/env python3
"""The redaction check of a whole test run.

tests/support/record.rs keeps everything ringgate said during the run: every log line
of every `ringgate` the tests started, their stdout (the access log), and every Admin
API response the tests read. This searches all of it for the test secrets
(tests/secrets.txt and the client secrets of tests/idp/clients.json), PEM private keys
and JWTs (an access token in a log or a response is a leak too). A finding names the
file, the line and what kind of secret it is, never the secret itself.

Usage: scripts/redaction.py [RECORD_DIR]   (default: target/tmp/record)
Exit status: 0 clean, 1 a finding or nothing recorded.
"""
import json
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
record = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root / "target" / "tmp" / "record"

secrets = []
for line in (root / "tests" / "secrets.txt").read_text().splitlines():
    line = line.strip()
    if line and not line.startswith("#"):
        secrets.append(line)
clients = json.loads((root / "tests" / "idp" / "clients.json").read_text())
secrets += [c["client_secret"] for c in clients["clients"]]
secrets.append(clients["load"]["secret_prefix"])
secrets = sorted(set(secrets))
patterns = {
    "a PEM private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "a JWT": re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."),
}

files = sorted(p for p in record.glob("*.txt") if p.is_file())
if not files:
    print(f"redaction: nothing recorded in {record}; did the tests run?")
    sys.exit(1)

findings = []
lines_read = 0
for f in files:
    for number, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
        lines_read += 1
        for i, s in enumerate(secrets):
            if s in line:
                findings.append(f"{f.name}:{number}: test secret #{i + 1} of {len(secrets)}")
        for what, pattern in patterns.items():
            if pattern.search(line):
                findings.append(f"{f.name}:{number}: {what}")

if findings:
    print(f"redaction: {len(findings)} finding(s) in {len(files)} recorded files:")
    for finding in findings[:50]:
        print("  " + finding)
    sys.exit(1)
print(f"redaction: {lines_read} lines in {len(files)} recorded files, no secret, key or token")
