"""Entry of the benchmarks (bench/run.sh calls it with the controller venv).

    python bench/run.py [deploy] [sessions] [redis] [rolling]

No argument = every part, in this order: deploy (starts from empty hosts),
sessions, redis, rolling (last: it leaves the site on release r2). A part run
alone creates and deploys the bench sandbox first when it does not answer.
Each part writes bench/results/<part>.json; a failing part is recorded in
bench/results/errors.json and the others still run; the exit status is 1 if
any part failed.
"""

import json
import sys
import time
import traceback

import common
import part_deploy
import part_redis
import part_rolling
import part_sessions

PARTS = {"deploy": part_deploy, "sessions": part_sessions, "redis": part_redis, "rolling": part_rolling}


def main(argv):
    wanted = argv or list(PARTS)
    unknown = [p for p in wanted if p not in PARTS]
    if unknown:
        sys.exit(f"unknown part(s) {unknown}; known: {', '.join(PARTS)}")
    errors = common.read_json("errors") or {}
    timings = common.read_json("timings") or {}
    for name in wanted:
        common.log(f"=== part {name} ===")
        started = time.monotonic()
        try:
            PARTS[name].run()
            errors.pop(name, None)
        except Exception as exc:  # noqa: BLE001 - recorded, the other parts still run
            traceback.print_exc()
            errors[name] = f"{type(exc).__name__}: {exc}"[-3000:]
        timings[name] = round(time.monotonic() - started, 1)
        common.write_json("errors", errors)
        common.write_json("timings", timings)
    if errors:
        common.log(f"failed parts: {json.dumps(sorted(errors))}")
    return 1 if any(name in errors for name in wanted) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
