"""bench/results/summary.md from bench/results/*.json (standard library only)."""

import json
import pathlib

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def load(name):
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def fmt(value, digits=1):
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def machine(data):
    m = data.get("machine") or {}
    return (f"Machine: {m.get('cpus')} CPUs, load average {m.get('loadavg_at_start')} at the start of the part "
            f"({m.get('date_utc')}).")


def by_concurrency(data):
    """{"c16": {"rows", "means", "ratios"}, ...} from bench/results/sessions.json, and the failed rows."""
    rows = data.get("rows", [])
    means, ratios = data.get("means", {}), data.get("ratios", {})
    out = {}
    for key in means:
        connections = int(key[1:])
        out[key] = {"connections": connections, "means": means[key], "ratios": ratios.get(key, {}),
                    "rows": [r for r in rows if r.get("connections") == connections]}
    return out, [r for r in rows if r.get("status") != "ok"]


def _interpret(means):
    """What this run's means say, in one or two sentences (no claim the numbers do not make)."""
    rps = {k: v["rps"] for k, v in means.items()}
    if not rps:
        return "no configuration was measured."
    slowest, fastest = min(rps, key=rps.get), max(rps, key=rps.get)
    ser = [f"{e} {rps[e + '+SER'] / rps[e]:.2f}x" for e in ("db", "cache", "cached_db") if e in rps and e + "+SER" in rps]
    text = f"slowest {slowest} ({rps[slowest]:.0f} req/s), fastest {fastest} ({rps[fastest]:.0f} req/s)"
    if ser:
        text += "; turning SESSION_SAVE_EVERY_REQUEST on leaves " + ", ".join(ser) + " of the same engine's req/s"
    return text + "."


def sessions(data, out):
    out.append("## 1. Session engines through the load balancer\n")
    m = data["method"]
    groups, failed = by_concurrency(data)
    conc = ", ".join(f"-c{g['connections']}" for g in groups.values()) or f"-c{m['connections']}"
    out.append(f"`wrk -t{m['threads']}` at {conc} (after one warm-up of {m['warmup_s']} s each), {m['duration_s']} s of "
               f"{m['path']} via {m['via']}, cookies of {m['users']} users logged in through the login form after "
               f"each switch; {m['rounds']} rounds, order reversed in even rounds. `+SER` = "
               "SESSION_SAVE_EVERY_REQUEST on; `bundle` = `bundle_runtime.sessions` (SER off). "
               + ("High concurrency keeps both CPUs busy (throughput bound by CPU, which every process of the stack "
                  "shares); low concurrency leaves them partly idle (throughput bound by the latency of one request, "
                  "closest to the issue's single-client in-process measurement). " if len(groups) > 1 else "")
               + machine(data) + "\n")
    for r in failed:
        out.append(f"- round {r['round']} {r['config']}: {r.get('status')}")
    verdicts = []
    for key, g in groups.items():
        out.append(f"\n### -c{g['connections']}\n")
        out.append("| round | config | req/s | p50 ms | p99 ms | not authenticated | client CPU (cores) |")
        out.append("|---|---|---|---|---|---|---|")
        for r in g["rows"]:
            out.append(f"| {r['round']} | {r['config']} | {fmt(r.get('rps'))} | {fmt(r.get('p50_ms'), 2)} | "
                       f"{fmt(r.get('p99_ms'), 2)} | {fmt(r.get('not_authenticated'))} | "
                       f"{fmt(r.get('client_cpu_cores'), 2)} |")
        out.append("\nMean over rounds:\n")
        out.append("| config | req/s | p50 ms | p99 ms | rounds |")
        out.append("|---|---|---|---|---|")
        for label, v in g["means"].items():
            out.append(f"| {label} | {fmt(v['rps'])} | {fmt(v['p50_ms'], 2)} | {fmt(v['p99_ms'], 2)} | {v['rounds']} |")
        rounds = sorted({r["round"] for r in g["rows"]})
        # Three decimals (as stored): a ratio just under a target must not print as the target.
        out.append("\nRatios of req/s (of the means, median of the per-round ratios, and per round):\n")
        out.append("| ratio | mean | median | " + " | ".join(f"round {n}" for n in rounds) + " |")
        out.append("|---|---|---|" + "---|" * len(rounds))
        for name, v in g["ratios"].items():
            out.append(f"| {name} | {fmt(v.get('mean'), 3)} | {fmt(v.get('median'), 3)} | "
                       + " | ".join(fmt(v.get(f"round{n}"), 3) for n in rounds) + " |")
        parts = []
        for other, target in (("cache", 0.9), ("db+SER", 1.5)):
            v = g["ratios"].get(f"bundle / {other}", {})
            if v.get("mean") is None:
                parts.append(f"vs {other}: not measured")
                continue
            parts.append(f"{v['mean']:.3f}x {other} ({'meets' if v['mean'] >= target else 'below'} {target}x; "
                         f"median of rounds {fmt(v.get('median'), 3)}x)")
        verdicts.append(f"-c{g['connections']}: " + "; ".join(parts))
        out.append(f"\nInterpretation (-c{g['connections']}, this run): " + _interpret(g["means"]))
    out.append("\nIssue target (bundle >= 0.9x cache and >= 1.5x db+SER): " + " | ".join(verdicts) + ".")
    restore = data.get("restore", {})
    out.append(f"Defaults restored afterwards: rc={restore.get('rc')}, running {restore.get('running')}.\n")


def redis(data, out):
    out.append("## 2. Redis SET/GET on the sessions instance by AOF policy\n")
    m = data["method"]
    out.append(f"redis-benchmark (Redis {data['redis_version']}) inside the redis host, port {m['port']}, admin user, "
               f"{m['requests']} requests x SET and GET, {m['clients']} clients, {m['value_bytes']}-byte values, "
               f"no pipelining, scratch db {m['scratch_db']}; {m['rounds']} rounds alternating the order. "
               f"Configured {data['configured']}, restored {data['restored']} (ok: {data['restored_ok']}). "
               + machine(data) + "\n")
    out.append("| round | policy | SET ops/s | GET ops/s |")
    out.append("|---|---|---|---|")
    for r in data["rows"]:
        out.append(f"| {r['round']} | {r['policy']} | {r['set_ops']:.0f} | {r['get_ops']:.0f} |")
    out.append("\n| policy | SET ops/s (mean) | GET ops/s (mean) | SET / everysec | GET / everysec |")
    out.append("|---|---|---|---|---|")
    for label, v in data["means"].items():
        r = data["ratios_to_everysec"].get(label, {})
        out.append(f"| {label} | {v['set_ops']} | {v['get_ops']} | {fmt(r.get('set'), 2)} | {fmt(r.get('get'), 2)} |")
    ratios = data["ratios_to_everysec"]
    if "always" in ratios and "aof off" in ratios:
        off = ratios["aof off"]["set"]
        out.append(f"\nInterpretation: `appendfsync always` keeps {ratios['always']['set']:.0%} of the everysec SET "
                   f"throughput, while AOF off reaches {off:.2f}x everysec on SET (no AOF at all gains "
                   f"{'nothing measurable' if off < 1.05 else f'{off - 1:.0%}'}): everysec costs little for at most "
                   "~1 s of session writes at risk, which justifies the configured policy "
                   "(GETs do not touch the AOF; their spread is noise).")
    out.append("")


def settings_verdict(ratios, noise):
    """One sentence per controller setting of ansible.cfg, from the variant/baseline ratios of this run.

    ``noise``: relative spread of the two identical baseline runs; a ratio
    closer to 1 than that is not a measured difference.
    """
    def measured(ratio):
        return abs(ratio - 1) > noise

    parts = [f"the two identical baseline no-op runs differ by {noise:.0%}, so only a ratio further from 1.00 "
             "than that is a measured difference"]
    pipelining = ratios.get("pipelining off")
    if pipelining:
        if measured(pipelining) and pipelining > 1:
            parts.append(f"pipelining off takes {pipelining:.2f}x the baseline: `ansible.cfg` keeps `pipelining = True`")
        else:
            parts.append(f"pipelining off takes {pipelining:.2f}x, no measurable difference over `docker exec` "
                         "(the sandbox connection); `pipelining = True` stays for SSH hosts, where it saves the "
                         "module upload round-trips of every task (not measured here)")
    forks = ratios.get("forks 1")
    if forks:
        verdict = "slower" if measured(forks) and forks > 1 else "not measurably slower"
        parts.append(f"forks 1 takes {forks:.2f}x ({verdict}; most plays of the no-op run target one group or run "
                     "`serial`): `forks = 10` covers the five sandbox hosts at once, and a larger fleet needs forks "
                     ">= the hosts of its widest play")
    cache = next((v for k, v in ratios.items() if k.startswith("smart gathering")), None)
    if cache:
        verdict = f"saves {1 - cache:.0%}" if measured(cache) and cache < 1 else "no measurable gain"
        parts.append(f"smart gathering with a warm jsonfile fact cache takes {cache:.2f}x ({verdict}); "
                     "`ansible.cfg` leaves fact caching off: the deploy reads host addresses "
                     "(`bundle_private_address`) and the Python version and architecture (wheelhouse) from facts, "
                     "which a persistent cache would keep stale after a host is rebuilt")
    return "Controller settings (this run): " + "; ".join(parts) + "."


def deploy(data, out):
    out.append("## 3. Deploy timing from empty hosts\n")
    out.append(f"Containers created in {data.get('create_seconds')} s. `ansible.posix.profile_tasks` on. "
               f"{machine(data)}\n")
    out.append("| run | seconds |")
    out.append("|---|---|")
    if data.get("full"):
        out.append(f"| full `site.yml` on empty hosts | {data['full']['seconds']} |")
    if data.get("noop"):
        out.append(f"| no-op re-run (changed=0 asserted on every host) | {data['noop']['seconds']} |")
    for name, v in (data.get("variants") or {}).items():
        ratio = (data.get("ratios_to_baseline") or {}).get(name)
        extra = f" ({ratio:.2f}x the baseline mean {data['noop_baseline_mean_seconds']} s)" if ratio else ""
        out.append(f"| no-op re-run, {name} | {v['seconds']}{extra} |")
    for key, title in (("full", "full site.yml"), ("noop", "no-op re-run")):
        if data.get(key):
            out.append(f"\nTen slowest tasks, {title}:\n")
            out.append("| task | s |")
            out.append("|---|---|")
            for task, secs in data[key]["slowest_tasks"]:
                out.append(f"| {task} | {secs:.2f} |")
    if data.get("full") and data.get("noop"):
        share = data["noop"]["seconds"] / data["full"]["seconds"]
        out.append(f"\nInterpretation: the no-op re-run takes {share:.0%} of a full deploy from empty hosts: "
                   "the time goes into the number of tasks (module round-trips over `docker exec`, each a few "
                   "seconds on this loaded machine) and the preflight's release staging, not into package installs.")
    ratios = data.get("ratios_to_baseline") or {}
    again = (data.get("variants") or {}).get("baseline again")
    if ratios and again and data.get("noop") and data.get("noop_baseline_mean_seconds"):
        noise = abs(data["noop"]["seconds"] - again["seconds"]) / data["noop_baseline_mean_seconds"]
        out.append("\n" + settings_verdict(ratios, noise))
    if not data.get("variants"):
        out.append("\nNo-op re-run with pipelining off, forks 1, smart gathering + fact cache: **not measured in "
                   "this run** (`BENCH_DEPLOY_VARIANTS=1`, the default, measures them).")
    out.append("")


def rolling(data, out):
    out.append("## 4. Rolling deploy under load\n")
    s = data["stats"]
    p = data["playbook"]
    out.append(f"`rolling_migrate.yml` to r2 while {data['method']['users']} logged-in users hit the LB "
               f"({data['method']['http_workers']} HTTP workers, {data['method']['ws_clients']} WebSocket clients): "
               f"playbook rc={p['rc']}, {p['seconds']} s. Plot: `rolling.png` (grey = play start, purple = drain, "
               "black dotted = restart, green = enable). " + machine(data) + "\n")
    out.append("| HTTP requests | failures | logouts | p50 s | p95 s | max s | WS messages | WS reconnects | "
               "WS logouts | WS failures | WS abnormal closes |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    out.append(f"| {s['requests']} | {s['failures']} | {s['logouts']} | {s['http_latency_p50_s']} | "
               f"{s['http_latency_p95_s']} | {s['http_latency_max_s']} | {s['ws_messages']} | {s['ws_reconnects']} | "
               f"{s['ws_logouts']} | {s['ws_failures']} | {s['ws_abnormal_closes']} |")
    out.append(f"\nInterpretation (of this run): during the {p['seconds']:.0f} s deploy the users saw {s['failures']} HTTP failures, "
               f"{s['logouts']} HTTP logouts and {s['ws_logouts']} WebSocket logouts; WebSocket clients reconnected "
               f"{s['ws_reconnects']} times (restarts close sockets on purpose); latency rises during release "
               "staging/installation (CPU shared with the app hosts), not at the drained host switches.")
    out.append("\n| t (s) | event |")
    out.append("|---|---|")
    events = [(x["t"], f"PLAY {x['name']}") for x in data["plays"]]
    events += [(x["t"], f"{x['kind']} {x['host']}") for x in data["switches"]]
    for t, what in sorted(events):
        out.append(f"| {t:.1f} | {what} |")
    out.append("")


def main():
    out = ["# Benchmark results (`make bench`)\n",
           "Ratios are measured within one run on one shared, noisy 2-core machine where the load client, the "
           "load balancer, both app hosts, PostgreSQL and Redis share the CPUs: compare rows of the same run, "
           "not absolute numbers across machines. Raw data: the JSON files beside this one.\n"]
    timings = load("timings") or {}
    errors = load("errors") or {}
    if timings:
        out.append("Part durations (s): " + ", ".join(f"{k} {v}" for k, v in timings.items()) + ".")
    if errors:
        out.append("\n**Failed parts**: " + "; ".join(f"{k}: {v[:300]}" for k, v in errors.items()))
    out.append("")
    for name, render in (("sessions", sessions), ("redis", redis), ("deploy", deploy), ("rolling", rolling)):
        data = load(name)
        if data:
            render(data, out)
        else:
            out.append(f"## {name}: no results\n")
    (RESULTS / "summary.md").write_text("\n".join(out) + "\n")
    print("[report] wrote bench/results/summary.md")


if __name__ == "__main__":
    main()
