"""Parses a running server's metrics with the Prometheus project's Python text parser
(prometheus_client) and checks the coderd_api_* families and their route-pattern labels.

Usage: python3 prometheus_check.py <metrics-url>
"""

import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

url = sys.argv[1]
text = urllib.request.urlopen(url, timeout=10).read().decode()
families = {f.name: f for f in text_string_to_metric_families(text)}

expected = {
    "coderd_api_requests_processed": "counter",
    "coderd_api_concurrent_requests": "gauge",
    "coderd_api_request_latencies_seconds": "histogram",
}
for name, kind in expected.items():
    assert name in families, f"{name} missing; have {sorted(families)}"
    assert families[name].type == kind, f"{name} is {families[name].type}, not {kind}"

processed = {
    (s.labels["method"], s.labels["path"], s.labels["code"]): s.value
    for s in families["coderd_api_requests_processed"].samples
}
for key in [
    ("GET", "/api/v2/users/{user}", "200"),
    ("GET", "UNKNOWN", "404"),
    ("GET", "STATIC", "404"),
    # A route of a nested router carries its full pattern.
    ("GET", "/.well-known/oauth-protected-resource/{*suffix}", "200"),
    ("POST", "/oauth2/tokens", "400"),
]:
    assert processed.get(key, 0) >= 1, f"no sample for {key}; have {sorted(processed)}"
assert not any("AAAA" in p or "gatehouse-e2e" in p for (_, p, _) in processed), "raw paths leaked into labels"

buckets = sorted(
    float(s.labels["le"])
    for s in families["coderd_api_request_latencies_seconds"].samples
    if s.name.endswith("_bucket") and s.labels["path"] == "/api/v2/users/{user}"
)
assert buckets == [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, float("inf")], buckets
print(f"prometheus: {len(families)} families parsed, route patterns as labels: passed")
