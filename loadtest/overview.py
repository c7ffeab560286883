#!/usr/bin/env python3
"""The overview (GET /v1/stats) at scale: a release kurz on a fresh data directory, LINKS links
created in batches, CLICKS clicks reported over the last 29 days (four agents, 50 referrer sites),
then each overview query timed five times once the projector has caught up.

Usage: cargo build --release -p kurz && loadtest/overview.py 10000 300000"""
import json, os, random, shutil, statistics, subprocess, sys, tempfile, time, urllib.request
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "kurz")
d = tempfile.mkdtemp()
env = dict(os.environ, KURZ_STORAGE__DATA_DIR=d, KURZ_HTTP__LISTEN="127.0.0.1:18090",
           KURZ_LIMITS__WRITES_PER_KEY_PER_SECOND="10000000", KURZ_LOG__FORMAT="text")
p = subprocess.Popen([BIN], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
base = "http://127.0.0.1:18090"
for _ in range(100):
    try:
        urllib.request.urlopen(base + "/health"); break
    except Exception:
        time.sleep(0.1)
key = open(d + "/admin.key").read().strip()
def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"authorization": "Bearer " + key, "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read() or b"null")
LINKS = int(sys.argv[1]); CLICKS = int(sys.argv[2])
codes = []
for b in range(LINKS // 1000):
    r = call("POST", "/v1/links/batch", {"links": [{"target_url": f"https://example.com/{b}/{i}"} for i in range(1000)]})
    codes += [item["link"]["code"] for item in r["results"] if "link" in item]
assert len(codes) == LINKS, len(codes)
agents = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
          "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
          "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "curl/8.5.0"]
now = time.time()
rng = random.Random(7)
for b in range(CLICKS // 1000):
    clicks = []
    for i in range(1000):
        at = now - rng.random() * 29 * 86400
        clicks.append({"code": rng.choice(codes), "clicked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
                       "user_agent": rng.choice(agents), "visitor_id": f"v{rng.randrange(100000)}",
                       "referrer": f"https://site{rng.randrange(50)}.example/"})
    call("POST", "/v1/clicks", {"clicks": clicks})
# until the projector caught up: total clicks of the overview with bots included
deadline = time.time() + 300
while True:
    o = call("GET", "/v1/stats?bots=include")
    if o["total_clicks"] == CLICKS or time.time() > deadline: break
    time.sleep(1)
assert o["total_clicks"] == CLICKS, o["total_clicks"]
for q in ["", "?interval=hour", "?from=" + time.strftime("%Y-%m-%d", time.gmtime(now - 6 * 86400))]:
    times = []
    for _ in range(5):
        t = time.perf_counter(); o = call("GET", "/v1/stats" + q); times.append(time.perf_counter() - t)
    print(f"links={LINKS} clicks={CLICKS} /v1/stats{q}: median {statistics.median(times)*1000:.0f} ms (min {min(times)*1000:.0f}, max {max(times)*1000:.0f}); links={o['links']} total={o['total_clicks']}")
t = time.perf_counter(); call("GET", f"/v1/links/{codes[0]}/stats"); print(f"one link's stats: {(time.perf_counter()-t)*1000:.1f} ms")
p.terminate(); p.wait()
shutil.rmtree(d)
