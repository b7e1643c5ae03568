"""PNG plots of bench/results/*.json (run with the plotting venv .cache/venv-bench).

Draws only what has results: sessions.png, redis.png, deploy.png, rolling.png.
"""

import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import report  # noqa: E402 - bench/report.py (standard library only)

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def load(name):
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def save(fig, name):
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}.png", dpi=110)
    plt.close(fig)
    print(f"[plot] wrote bench/results/{name}.png")


def sessions(data):
    groups, failed = report.by_concurrency(data)
    groups = {k: g for k, g in groups.items() if g["rows"]}
    if not groups:
        return
    fig, axes = plt.subplots(len(groups), 2, figsize=(13, 4.4 * len(groups)), squeeze=False)
    for (ax1, ax2), g in zip(axes, groups.values()):
        rows = [r for r in g["rows"] if r.get("status") == "ok"]
        labels = []
        for r in rows:
            if r["config"] not in labels:
                labels.append(r["config"])
        rounds = sorted({r["round"] for r in rows})
        width = 0.8 / max(1, len(rounds))
        for i, round_no in enumerate(rounds):
            rps, p50, p99 = [], [], []
            for label in labels:
                row = next((r for r in rows if r["config"] == label and r["round"] == round_no), None)
                rps.append(row["rps"] if row else 0)
                p50.append(row["p50_ms"] if row else 0)
                p99.append(row["p99_ms"] if row else 0)
            xs = [x + i * width for x in range(len(labels))]
            ax1.bar(xs, rps, width, label=f"round {round_no}")
            ax2.bar(xs, p99, width, label=f"p99 round {round_no}", alpha=0.45)
            ax2.bar(xs, p50, width, label=f"p50 round {round_no}")
        for ax in (ax1, ax2):
            ax.set_xticks([x + width * (len(rounds) - 1) / 2 for x in range(len(labels))])
            ax.set_xticklabels(labels, rotation=30, ha="right")
            ax.legend(fontsize=8)
        ax1.set_title(f"authenticated GET /whoami through the LB, wrk -c{g['connections']}: req/s", fontsize=10)
        ax1.set_ylabel("requests/s")
        ax2.set_title(f"latency (ms), -c{g['connections']}: p50 solid, p99 light", fontsize=10)
        ax2.set_ylabel("ms")
    if failed:
        fig.suptitle("no result: " + ", ".join(sorted({r["config"] for r in failed})), fontsize=9)
    save(fig, "sessions")


def redis(data):
    means = data.get("means") or {}
    if not means:
        return
    labels = list(means)
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], [means[k]["set_ops"] for k in labels], 0.4, label="SET")
    ax.bar([x + 0.2 for x in xs], [means[k]["get_ops"] for k in labels], 0.4, label="GET")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels)
    ax.set_ylabel("ops/s (mean of rounds)")
    ax.set_title(f"sessions Redis (port {data['method']['port']}): redis-benchmark by AOF policy", fontsize=10)
    ax.legend()
    save(fig, "redis")


def deploy(data):
    panels = [("full site.yml", data.get("full")), ("no-op re-run", data.get("noop"))]
    panels = [(t, p) for t, p in panels if p]
    if not panels:
        return
    variants = data.get("variants") or {}
    ncols = len(panels) + (1 if variants else 0)
    fig, axes = plt.subplots(1, ncols, figsize=(6.5 * ncols, 5))
    axes = list(axes) if ncols > 1 else [axes]
    for ax, (title, part) in zip(axes, panels):
        tasks = list(reversed(list(enumerate(part["slowest_tasks"], 1))))
        ax.barh([f"{i}. {t[0][:52]}" for i, t in tasks], [t[1] for _, t in tasks])
        ax.set_title(f"{title}: {part['seconds']:.0f} s, ten slowest tasks", fontsize=10)
        ax.set_xlabel("s")
        ax.tick_params(axis="y", labelsize=7)
    if variants:
        ax = axes[-1]
        names = ["baseline (ansible.cfg)"] + list(variants)
        secs = [data["noop"]["seconds"]] + [v["seconds"] for v in variants.values()]
        ax.barh(list(reversed(names)), list(reversed(secs)))
        ax.set_title("no-op re-run by controller setting", fontsize=10)
        ax.set_xlabel("s")
        ax.tick_params(axis="y", labelsize=8)
    save(fig, "deploy")


def rolling(data):
    timeline = data.get("timeline") or []
    if not timeline:
        return
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(13, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for kind, colour in (("http", "tab:blue"), ("ws", "tab:green")):
        ok = [(s[0], s[2] * 1000) for s in timeline if s[1] == kind and s[3]]
        bad = [(s[0], s[2] * 1000) for s in timeline if s[1] == kind and not s[3]]
        if ok:
            ax1.scatter(*zip(*ok), s=3, c=colour, alpha=0.4, label=f"{kind} ok")
        if bad:
            ax1.scatter(*zip(*bad), s=18, c="red" if kind == "http" else "orange", marker="x",
                        label=f"{kind} error/logout")
    ax1.set_yscale("log")
    ax1.set_ylabel("latency (ms, log)")
    end = max(s[0] for s in timeline) + 1
    seconds = list(range(int(end) + 1))
    errors = [0] * len(seconds)
    total = [0] * len(seconds)
    for s in timeline:
        if s[1] == "http":
            total[int(s[0])] += 1
            errors[int(s[0])] += 0 if s[3] else 1
    ax2.bar(seconds, total, width=1.0, color="tab:blue", alpha=0.35, label="HTTP requests/s")
    ax2.bar(seconds, errors, width=1.0, color="red", label="HTTP errors+logouts/s")
    ax2.set_ylabel("per second")
    ax2.set_xlabel("seconds since the load started")
    top = ax1.get_ylim()[1]
    for i, play in enumerate(data.get("plays", [])):
        for ax in (ax1, ax2):
            ax.axvline(play["t"], color="grey", lw=0.8)
        ax1.text(play["t"], top, f" {i + 1}", fontsize=7, va="top", color="dimgrey")
    styles = {"drain": ("purple", "--"), "restart": ("black", ":"), "enable": ("darkgreen", "--")}
    for event in data.get("switches", []):
        colour, style = styles.get(event["kind"], ("black", ":"))
        for ax in (ax1, ax2):
            ax.axvline(event["t"], color=colour, ls=style, lw=1.2)
        ax1.text(event["t"], top / 3, f" {event['kind']} {event['host']}", rotation=90, fontsize=7,
                 color=colour, va="top")
    legend_plays = "\n".join(f"{i + 1}: {p['name'][:60]}" for i, p in enumerate(data.get("plays", [])))
    ax1.legend(loc="upper right", fontsize=7, markerscale=3)
    ax2.legend(loc="upper right", fontsize=7)
    stats = data.get("stats", {})
    ax1.set_title(f"rolling_migrate.yml to r2 under load ({data['playbook']['seconds']:.0f} s, rc {data['playbook']['rc']}): "
                  f"{stats.get('requests')} HTTP requests, {stats.get('failures')} failures, "
                  f"{stats.get('logouts')} logouts, {stats.get('ws_reconnects')} WS reconnects", fontsize=10)
    fig.text(0.01, 0.01, "plays (grey lines): " + legend_plays.replace("\n", " | "), fontsize=6, wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(RESULTS / "rolling.png", dpi=110)
    plt.close(fig)
    print("[plot] wrote bench/results/rolling.png")


def main():
    for name, draw in (("sessions", sessions), ("redis", redis), ("deploy", deploy), ("rolling", rolling)):
        data = load(name)
        if data:
            draw(data)


if __name__ == "__main__":
    main()
