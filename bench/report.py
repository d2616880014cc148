"""Turns the harness's TSV into bench/results/latest.md and prints one
`scenario ratio=… cpu_ratio=…` line per Gatehouse scenario (ratios to the matching
baseline: of throughput, and of the server's CPU time per request)."""

import datetime
import os
import sys

rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
duration, connections, out = sys.argv[2], sys.argv[3], sys.argv[4]
# A baseline measured several times (once per window) counts at its best: the highest
# req/s is the denominator, so a moment when the machine was slow flatters no ratio.
# Likewise its CPU time per request counts at its lowest.
by = {}
cheapest = {}
for r in rows:
    if r[0] not in by or float(r[1]) > float(by[r[0]][1]):
        by[r[0]] = r
    if r[0] not in cheapest or float(r[5]) < cheapest[r[0]]:
        cheapest[r[0]] = float(r[5])


def baseline_for(name):
    scenario = name.split("/", 1)[1]
    if scenario in ("healthz", "as_metadata"):
        return "baseline/hello"
    return "baseline/bearer"


# The real peer does the same job for these two: a bearer-protected GET and a rotating
# refresh grant (issue #8's goal: at least 5x each).
PEER_FOR = {"users_me_oauth2": "peer/bearer", "refresh_grant": "peer/refresh_grant"}


def ratio(name, other):
    if other not in by:
        return None
    return float(by[name][1]) / float(by[other][1])


def cpu_ratio(cpu_us, other):
    """What one request costs the baseline over what it costs Gatehouse: the throughput
    ratio one saturated core would give, whether or not wrk saturated it."""
    if other not in cheapest or float(cpu_us) <= 0:
        return None
    return cheapest[other] / float(cpu_us)


lines = [
    f"# Load harness results ({datetime.date.today().isoformat()})",
    "",
    f"`bench/run {duration}`: wrk, {duration} s per scenario, {connections} connections "
    "(the refresh grants: one connection per rotating chain); server pinned to core 0, wrk to core 1. "
    "`baseline/*` is the bare axum hello-world of `bench/baseline`; `peer/*` is panva's "
    "oidc-provider on Node 22 (`tools/idp`): its userinfo GET with an opaque bearer token and "
    "its rotating refresh grant. The baseline is measured at the start and again before each "
    "backend; ratios divide by its highest figure. `CPU µs/req` is the server's own CPU time "
    "(user + system, from /proc) over the requests wrk completed, and `core busy` its share of "
    "one core: the CPU ratio divides the baseline's lowest CPU µs/req by the scenario's, the "
    "throughput ratio one saturated core would show.",
    "",
    "| scenario | req/s | p50 ms | p99 ms | non-2xx | CPU µs/req | core busy "
    "| ratio to bare axum | CPU ratio | ratio to peer |",
    "|---|---|---|---|---|---|---|---|---|---|",
]
summary = []
for name, rps, p50, p99, errors, cpu_us, share in rows:
    bare = cpu = peer = ""
    if name.startswith("tls/"):
        # Compared with its plain-HTTP twin below, not with the baseline.
        continue
    if not name.startswith(("baseline/", "peer/")):
        scenario = name.split("/", 1)[1]
        base_name = baseline_for(name)
        r = ratio(name, base_name)
        bare = f"{r:.2f}× {base_name}" if r is not None else ""
        line = f"{name} ratio={r:.3f}" if r is not None else name
        c = cpu_ratio(cpu_us, base_name)
        if c is not None:
            cpu = f"{c:.2f}×"
            line += f" cpu_ratio={c:.3f}"
        peer_name = PEER_FOR.get(scenario)
        pr = ratio(name, peer_name) if peer_name else None
        if pr is not None:
            peer = f"{pr:.1f}× {peer_name}"
            line += f" peer_ratio={pr:.2f}"
        summary.append(f"{line} rps={rps} p99_ms={p99} non2xx={errors} cpu_us={cpu_us}")
    lines.append(
        f"| {name} | {rps} | {p50} | {p99} | {errors} | {cpu_us} | {share} | {bare} | {cpu} | {peer} |"
    )
# HTTPS against plain HTTP, same server, same run (issue #24: keep-alive HTTPS should
# cost at most 15% of plain-HTTP throughput).
tls_rows = [r for r in rows if r[0].startswith("tls/")]
if tls_rows:
    lines += [
        "",
        "## HTTPS against plain HTTP (SQLite, one server with both listeners)",
        "",
        "`GET /api/v2/users/me` with an API key, keep-alive, over each listener; then a new "
        "connection per request (`Connection: close`, `GET /healthz`), whose HTTPS rate is the "
        "full-handshake rate (TLS 1.3, ECDSA P-256 certificate, no resumption).",
        "",
        "| scenario | req/s | p50 ms | p99 ms | non-2xx | CPU µs/req | core busy | HTTPS / HTTP |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, rps, p50, p99, errors, cpu_us, share in tls_rows:
        twin = name.replace("_https", "_http")
        cell = ""
        if name.endswith("_https") and twin in by:
            r = float(rps) / float(by[twin][1])
            c = float(by[twin][5]) / float(cpu_us) if float(cpu_us) > 0 else 0.0
            cell = f"{r:.2f}× by req/s, {c:.2f}× by CPU"
            summary.append(f"{name} https_over_http={r:.3f} cpu_https_over_http={c:.3f} rps={rps} p99_ms={p99}")
        lines.append(f"| {name} | {rps} | {p50} | {p99} | {errors} | {cpu_us} | {share} | {cell} |")
# The memory soak: keys seeded, requests sent, RSS (KiB) at boot, before and after the load.
if len(sys.argv) > 5 and os.path.exists(sys.argv[5]):
    for line in open(sys.argv[5]):
        _, keys, requests, boot, start, end = line.rstrip("\n").split("\t")
        growth = (int(end) - int(start)) / 1024
        lines += [
            "",
            "## Memory soak (SQLite)",
            "",
            f"{keys} API keys, then {requests} requests alternating between them and 100k never-issued keys, "
            "from 100k client addresses (trusted `X-Forwarded-For`), rate limiter on.",
            "",
            "| RSS at boot | before the soak | after the soak | growth over the soak |",
            "|---|---|---|---|",
            f"| {int(boot) / 1024:.1f} MiB | {int(start) / 1024:.1f} MiB | {int(end) / 1024:.1f} MiB | {growth:.1f} MiB |",
        ]
        summary.append(f"soak growth_mib={growth:.1f} keys={keys} requests={requests}")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
print()
print("\n".join(summary))
