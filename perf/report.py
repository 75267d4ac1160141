#!/usr/bin/env python3
"""Arithmetic and write-up for perf/compare.sh (python3 standard library only).

compare.sh measures and records raw numbers in tab-separated files; this script turns
them into per-round figures, medians across rounds, ratios between cases, and the
markdown report. Two subcommands:

  line      one raw row -> one human line (printed after every round)
  markdown  meta.tsv + cases.tsv + ratios.tsv + raw.tsv -> the report file, medians
            and ratios on stdout

Raw columns (raw.tsv): round, case, requests, duration_us, p50_us, p90_us, p99_us,
max_us, errors, cpu_ticks, user_ticks, note. cpu_ticks is utime+stime of the measured
processes over the round, in clock ticks (1/clk_tck s); user_ticks the utime part (the
rest is the kernel's work for the process: its system calls, and the network stack and
io_uring work charged to it). A row without user_ticks reads n/a for both shares.

cases.tsv: name, what CPU is measured, description. ratios.tsv: case, reference,
targets — which case ÷ reference ratios to report, and the targets they are held to:
comma-separated `cpu<=x`, `cpu>=x`, `rps<=x`, `rps>=x` (cpu: CPU µs/request, rps:
requests/s), judged on the median of the per-round ratios. A pair whose cases did not
both run is left out.
"""

import argparse
import statistics
import sys

RAW_COLUMNS = [
    "round", "case", "requests", "duration_us", "p50_us", "p90_us", "p99_us",
    "max_us", "errors", "cpu_ticks", "user_ticks", "note",
]
INT_COLUMNS = RAW_COLUMNS[2:10]


def parse_raw_row(fields):
    row = dict(zip(RAW_COLUMNS, fields + [""] * (len(RAW_COLUMNS) - len(fields))))
    for k in INT_COLUMNS:
        row[k] = int(row[k] or 0)
    row["user_ticks"] = int(row["user_ticks"]) if row["user_ticks"] else None
    return row


def derive(row, clk_tck):
    """Adds requests/s and CPU microseconds per request (all, user, kernel) to a raw row."""
    secs = row["duration_us"] / 1e6
    row["rps"] = row["requests"] / secs if secs else 0.0
    per_req = lambda ticks: ticks * 1e6 / clk_tck / row["requests"] if row["requests"] else float("nan")
    row["cpu_us_per_req"] = per_req(row["cpu_ticks"])
    user = row["user_ticks"]
    row["user_us_per_req"] = None if user is None else per_req(user)
    row["sys_us_per_req"] = None if user is None else per_req(row["cpu_ticks"] - user)
    return row


def fmt_us(x):
    return "n/a" if x is None else f"{x:.2f}"


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def fmt_ms(us):
    return f"{us / 1000:.2f}"


def fmt_ratio(x):
    return "n/a" if x is None else f"{x:.3f}"


METRICS = {"cpu": "cpu_us_per_req", "rps": "rps"}


def parse_targets(text):
    """'cpu<=0.85,rps>=1' -> [("cpu", "<=", 0.85), ("rps", ">=", 1.0)]."""
    targets = []
    for t in filter(None, (x.strip() for x in text.split(","))):
        for op in ("<=", ">="):
            if op in t:
                metric, value = t.split(op, 1)
                metric = metric.strip()
                if metric not in METRICS:
                    raise SystemExit(f"report.py: unknown metric in target '{t}'")
                targets.append((metric, op, float(value)))
                break
        else:
            raise SystemExit(f"report.py: target '{t}' has no <= or >=")
    return targets


def verdict(targets, values):
    """'cpu ≤ 0.85: met' for each target, from values {metric: ratio or None}."""
    out = []
    for metric, op, limit in targets:
        x = values.get(metric)
        sign = "≤" if op == "<=" else "≥"
        if x is None:
            state = "n/a"
        elif (x <= limit) if op == "<=" else (x >= limit):
            state = "**met**"
        else:
            state = "**missed**"
        out.append(f"{metric} {sign} {limit:g}: {state}")
    return "; ".join(out) or "—"


def cmd_line(args):
    row = derive(parse_raw_row(args.raw_line.split("\t")[:len(RAW_COLUMNS)]), args.clk_tck)
    extra = ""
    if row["errors"]:
        extra += f"  errors {row['errors']}"
    if row["note"]:
        extra += f"  ({row['note']})"
    print(
        f"round {args.round} {row['case']:<14} {row['rps']:>10.0f} req/s"
        f"  p50 {fmt_ms(row['p50_us'])} ms  p99 {fmt_ms(row['p99_us'])} ms"
        f"  CPU {row['cpu_us_per_req']:.2f} us/req"
        f" (user {fmt_us(row['user_us_per_req'])}, kernel {fmt_us(row['sys_us_per_req'])}){extra}"
    )


def median_or_none(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def cmd_markdown(args):
    meta = {k: v for k, v in (r[:2] for r in read_tsv(args.meta))}
    clk_tck = int(meta.pop("clk_tck"))
    cases = []  # (name, measured, description)
    for r in read_tsv(args.cases):
        r += [""] * (3 - len(r))
        cases.append(tuple(r[:3]))
    pairs = []  # (case, reference, targets)
    for r in read_tsv(args.ratios):
        r += [""] * (3 - len(r))
        pairs.append((r[0], r[1], parse_targets(r[2])))
    rows = [derive(parse_raw_row(r), clk_tck) for r in read_tsv(args.raw)[1:]]

    by_case = {name: [r for r in rows if r["case"] == name] for name, *_ in cases}
    med = {}
    for name, rs in by_case.items():
        med[name] = {
            k: median_or_none([r[k] for r in rs])
            for k in ("rps", "p50_us", "p99_us", "cpu_us_per_req", "user_us_per_req", "sys_us_per_req")
        }
        med[name]["rounds"] = len(rs)
        med[name]["errors"] = sum(r["errors"] for r in rs)
        med[name]["noted"] = sum(1 for r in rs if r["note"])

    # Ratios: the ratio of the medians, and the median of the per-round ratios (each
    # pairing two runs from the same round, so drift over the run cancels out).
    ratios = []
    for name, vs, targets in pairs:
        if not by_case.get(name) or not by_case.get(vs):
            continue
        per_round = {"cpu_us_per_req": [], "rps": []}
        mine = {r["round"]: r for r in by_case[name]}
        theirs = {r["round"]: r for r in by_case[vs]}
        for rnd in sorted(set(mine) & set(theirs), key=int):
            for k in per_round:
                if theirs[rnd][k]:
                    per_round[k].append(mine[rnd][k] / theirs[rnd][k])

        def of_medians(k):
            a, b = med[name][k], med[vs][k]
            return a / b if a is not None and b else None

        ratios.append((name, vs, targets, {k: (of_medians(k), median_or_none(v))
                                           for k, v in per_round.items()}))

    out = []
    w = out.append
    w(f"# Whole-proxy comparison, {meta.get('date', '?')} ({meta.get('commit', '?')})")
    w("")
    w("Produced by `perf/compare.sh`; see `perf/README.md` for what each number means.")
    w("")
    w("| | |")
    w("|---|---|")
    for k in ("date", "time", "commit", "kernel", "cpu", "nginx", "lua", "wrk", "ringgate", "baseline",
              "idp", "load", "pinning", "fill"):
        if k in meta:
            w(f"| {k} | {meta[k]} |")
    if "command" in meta:
        w(f"| command | `{meta['command']}` |")
    w("")
    w("## Cases")
    w("")
    for name, measured, desc in cases:
        w(f"- **{name}**: {desc}. CPU measured: {measured or 'n/a'}.")
    w("")
    w("## Medians across rounds")
    w("")
    w("User and kernel are the medians of each part on its own, so they need not add up to"
      " the CPU median exactly.")
    w("")
    w("| case | req/s | p50 ms | p99 ms | CPU µs/request | user µs | kernel µs | rounds | errors"
      " | rounds with a note |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, *_ in cases:
        m = med[name]
        if not m["rounds"]:
            continue
        w(f"| {name} | {m['rps']:.0f} | {fmt_ms(m['p50_us'])} | {fmt_ms(m['p99_us'])}"
          f" | {m['cpu_us_per_req']:.2f} | {fmt_us(m['user_us_per_req'])} | {fmt_us(m['sys_us_per_req'])}"
          f" | {m['rounds']} | {m['errors']} | {m['noted']} |")
    w("")
    if ratios:
        w("## Ratios")
        w("")
        w("Below 1 is better for CPU/request, above 1 is better for req/s. Targets are"
          " judged on the median of the per-round ratios.")
        w("")
        w("| case ÷ reference | CPU/request (of medians) | CPU/request (median per round)"
          " | req/s (of medians) | req/s (median per round) | target |")
        w("|---|---:|---:|---:|---:|---|")
        for name, vs, targets, r in ratios:
            cpu, rps = r["cpu_us_per_req"], r["rps"]
            judged = {m: r[col][1] for m, col in METRICS.items()}
            w(f"| {name} ÷ {vs} | {fmt_ratio(cpu[0])} | {fmt_ratio(cpu[1])}"
              f" | {fmt_ratio(rps[0])} | {fmt_ratio(rps[1])} | {verdict(targets, judged)} |")
        w("")
    w("## Rounds (raw)")
    w("")
    w(f"CPU ticks are 1/{clk_tck} s of utime+stime of the measured processes; user ticks the"
      " utime part.")
    w("")
    w("| round | case | requests | s | req/s | p50 ms | p90 ms | p99 ms | max ms"
      " | CPU ticks | user ticks | CPU µs/request | user µs | kernel µs | errors | note |")
    w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        user = "n/a" if r["user_ticks"] is None else r["user_ticks"]
        w(f"| {r['round']} | {r['case']} | {r['requests']} | {r['duration_us'] / 1e6:.2f}"
          f" | {r['rps']:.0f} | {fmt_ms(r['p50_us'])} | {fmt_ms(r['p90_us'])}"
          f" | {fmt_ms(r['p99_us'])} | {fmt_ms(r['max_us'])} | {r['cpu_ticks']} | {user}"
          f" | {r['cpu_us_per_req']:.2f} | {fmt_us(r['user_us_per_req'])} | {fmt_us(r['sys_us_per_req'])}"
          f" | {r['errors']} | {r['note']} |")
    w("")
    text = "\n".join(out)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)

    # The medians and ratios on stdout too, for whoever ran the script.
    start = text.index("## Medians")
    end = text.index("## Rounds")
    sys.stdout.write(text[start:end])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    line = sub.add_parser("line")
    line.add_argument("--clk-tck", type=int, required=True)
    line.add_argument("--round", required=True)
    line.add_argument("--raw-line", required=True)
    md = sub.add_parser("markdown")
    md.add_argument("--meta", required=True)
    md.add_argument("--cases", required=True)
    md.add_argument("--ratios", required=True)
    md.add_argument("--raw", required=True)
    md.add_argument("--out", required=True)
    args = p.parse_args()
    {"line": cmd_line, "markdown": cmd_markdown}[args.cmd](args)


if __name__ == "__main__":
    main()
