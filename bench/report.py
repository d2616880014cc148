"""Turns the harness's TSV into bench/results/latest.md and prints one
`scenario ratio=…` line per Gatehouse scenario (ratio to the matching baseline)."""

import datetime
import sys

rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
duration, connections, out = sys.argv[2], sys.argv[3], sys.argv[4]
by = {r[0]: r for r in rows}
base_hello = float(by["baseline/hello"][1])
base_bearer = float(by["baseline/bearer"][1])


def baseline_for(name):
    scenario = name.split("/", 1)[1]
    if scenario in ("healthz", "as_metadata"):
        return "baseline/hello", base_hello
    return "baseline/bearer", base_bearer


lines = [
    f"# Load harness results ({datetime.date.today().isoformat()})",
    "",
    f"`bench/run {duration}`: wrk, {duration} s per scenario, {connections} connections "
    "(the refresh grant: one connection per rotating chain); server pinned to core 0, wrk to core 1.",
    "",
    "| scenario | req/s | p50 ms | p99 ms | non-2xx | ratio to baseline |",
    "|---|---|---|---|---|---|",
]
summary = []
for name, rps, p50, p99, errors in rows:
    ratio = ""
    if not name.startswith("baseline/"):
        base_name, base_rps = baseline_for(name)
        r = float(rps) / base_rps
        ratio = f"{r:.2f}× {base_name}"
        summary.append(f"{name} ratio={r:.3f} rps={rps} p99_ms={p99}")
    lines.append(f"| {name} | {rps} | {p50} | {p99} | {errors} | {ratio} |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
print()
print("\n".join(summary))
