#!/usr/bin/env python3
"""Run RCAEval's own BARO and NSigma on RCAEval-format cases and score them.

    rcaeval_peers.py DIR [--length MIN] [--methods baro,nsigma] [--dataset NAME] [--json]
    rcaeval_peers.py table --peers PEERS.json [--ours DATA=EVAL.json ...]
                           [--predictions METHOD=PREDICTIONS.jsonl ...]

The first form finds every case directory under DIR (one holding data.csv and
inject_time.txt), prepares it exactly as RCAEval 1.8.1's main.py does, calls
RCAEval.e2e.baro / nsigma, and reports service-level AC@1, AC@3, AC@5 and Avg@5,
overall and per fault type, beside the chance level of a uniform random ranking
of the case's candidates. A case whose root cause is not among its candidates
counts 0 for chance, as it does for the method (no ranking of the candidates can
find it), the same rule `rootcause eval` applies.
A method that raises, prints RCAEval's fallback message, or returns no ranking
on any case is a failure: it is listed loudly and the exit status is 1.
With --json the report goes to stdout as JSON and the text to stderr; its
per_case entries are keyed by the case's path relative to DIR (`case`), the id
`rootcause eval` gives the same case.

The second form prints one comparison table from this script's --json output and
`rootcause eval --json` outputs. With --predictions METHOD=FILE (the per-case
JSON lines `rootcause eval --ranker METHOD --predictions FILE` writes on the same
cases), it also prints, per method, the share of cases on which RCAEval's and
rootcause's top-1 service agree.
"""

import argparse
import contextlib
import io
import json
import math
import os
import re
import sys
import time
import traceback

RCAEVAL_VERSION = "1.8.1"
KS = (1, 2, 3, 4, 5)
LABEL_FOLDER = re.compile(r"^(?P<service>\S+)_(?P<fault>[A-Za-z][A-Za-z0-9-]*)$")
# RCAEval's @rca wrapper prints this when it swallows an exception and returns the
# unranked column order.
FALLBACK_MARK = re.compile(r"\bfailed \(")


# ---------------------------------------------------------------- cases


def find_cases(root):
    """Case directories under root, sorted by their path relative to root."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if "data.csv" in filenames and "inject_time.txt" in filenames:
            rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
            found.append((rel if rel != "." else os.path.basename(os.path.abspath(root)), dirpath))
    return sorted(found)


def read_label(case_dir, rel):
    """(root cause, fault type, label.json or {}) as the Rust loader reads them, or None."""
    path = os.path.join(case_dir, "label.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
        root = meta.get("root_cause_service")
        if root is None:
            return None, meta
        return (root, meta.get("fault_type") or "unknown"), meta
    # nearest <service>_<fault> folder strictly between the root and the case directory,
    # split at the last "_" (RCAEval: basename(dirname(dirname(data.csv))).split("_"))
    parts = rel.split("/")[:-1]
    for name in reversed(parts):
        m = LABEL_FOLDER.match(name)
        if m:
            return (m.group("service"), m.group("fault")), {}
    return None, {}


def service_mapper(merge_db):
    """RCAEval main.py's service of a column: x.split("_")[0].replace("-db", "").

    Cases written by rootcause say merge_db_columns: false, because their column
    prefixes already are the case's services (a simulated `orders-db` is a service)."""
    if merge_db:
        return lambda col: col.split("_")[0].replace("-db", "")
    return lambda col: col.split("_")[0]


def prepare(case_dir, length):
    """RCAEval 1.8.1 main.py's case preparation, step for step."""
    import numpy as np
    import pandas as pd

    data = pd.read_csv(os.path.join(case_dir, "data.csv"))
    columns = [c for c in data.columns if c != "time"]
    # remove lat-50, only select lat-90
    data = data.loc[:, ~data.columns.str.endswith("_latency-50")]
    # RCAEval's Sock Shop preparation (RCAEval.io.time_series.preprocess_sock_shop) keeps lat_90
    # only; rootcause's reference rankers drop the same columns
    data = data.loc[:, ~(data.columns.str.endswith("lat_50") | data.columns.str.endswith("lat_99"))]
    data = data.replace([np.inf, -np.inf], np.nan)
    data = data.ffill()
    data = data.fillna(0)
    with open(os.path.join(case_dir, "inject_time.txt"), encoding="utf-8") as f:
        text = f.readlines()[0].strip()
    try:
        inject_time = int(text)
    except ValueError:
        # RCAEval's int() refuses "15.7"; the Rust loader floors it, so do the same
        inject_time = math.floor(float(text))
    # rows, not seconds: RCAEval's data is sampled every second
    normal_df = data[data["time"] < inject_time].tail(length * 60 // 2)
    anomal_df = data[data["time"] >= inject_time].head(length * 60 // 2)
    data = pd.concat([normal_df, anomal_df], ignore_index=True)
    data = data.rename(
        columns={c: c.replace("_latency-90", "_latency") for c in data.columns if c.endswith("_latency-90")}
    )
    return data, inject_time, columns


def run_method(func, data, inject_time, dataset):
    """(ranks, error) for one call; error is None only when the method really ran."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(captured):
            out = func(
                data,
                inject_time,
                dataset=dataset,
                anomalies=None,
                dk_select_useful=False,
                sli=None,
                verbose=False,
                n_iter=len(data.columns) - 1,
            )
    except Exception as e:  # noqa: BLE001 - every failure is reported, none swallowed
        return None, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"
    printed = captured.getvalue()
    if FALLBACK_MARK.search(printed):
        return None, f"RCAEval fell back to column order: {printed.strip()}"
    if not isinstance(out, dict) or "ranks" not in out:
        return None, f"returned {type(out).__name__} without 'ranks'"
    if "adj" in out and not len(out["adj"]):
        # the signature of @rca's fallback: baro and nsigma return no "adj"
        return None, "returned the @rca fallback (empty adj, column order)"
    ranks = list(out["ranks"])
    if not ranks:
        return None, "returned an empty ranking"
    if "time" in ranks:
        return None, "ranked the time column (preprocessing did not run: dataset=None?)"
    return ranks, None


def service_ranking(ranks, service_of):
    seen, out = set(), []
    for col in ranks:
        s = service_of(col)
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


# ---------------------------------------------------------------- scoring


def summarize(rows):
    """rows: dicts with hit (list of 5 bools), n, found, seconds.

    Chance is the mean over cases of min(k, n)/n for a uniformly random ranking of
    the n candidates, and 0 for a case whose root cause is not a candidate (found
    is False): a random ranking cannot find it either."""
    n = len(rows)
    if n == 0:
        return None
    ac = {f"ac{k}": sum(r["hit"][k - 1] for r in rows) / n for k in KS}
    chance = {
        f"ac{k}": sum((min(k, r["n"]) / r["n"]) if r["n"] and r["found"] else 0.0 for r in rows) / n
        for k in KS
    }
    overall = {"ac1": ac["ac1"], "ac3": ac["ac3"], "ac5": ac["ac5"], "avg5": sum(ac.values()) / len(KS)}
    chance_out = {
        "ac1": chance["ac1"],
        "ac3": chance["ac3"],
        "ac5": chance["ac5"],
        "avg5": sum(chance.values()) / len(KS),
    }
    return {"cases": n, "overall": overall, "chance": chance_out}


def evaluate(root, methods, length, dataset):
    import RCAEval.e2e as e2e

    funcs = {}
    for m in methods:
        if not hasattr(e2e, m):
            raise SystemExit(f"RCAEval.e2e has no {m!r}: is RCAEval {RCAEVAL_VERSION} installed on Python 3.12?")
        funcs[m] = getattr(e2e, m)

    cases = find_cases(root)
    if not cases:
        raise SystemExit(f"no case directory (data.csv + inject_time.txt) under {root}")
    rows = {m: [] for m in methods}
    failures = {m: [] for m in methods}
    unlabelled = []
    absent = []
    for rel, case_dir in cases:
        label, meta = read_label(case_dir, rel)
        if label is None:
            unlabelled.append(rel)
            continue
        service_of = service_mapper(meta.get("merge_db_columns", True))
        root_cause, fault = label
        if meta.get("merge_db_columns", True):
            # RCAEval never labels a database; map one as its columns are mapped
            root_cause = root_cause.replace("-db", "")
        t0 = time.perf_counter()
        try:
            data, inject_time, columns = prepare(case_dir, length)
        except Exception as e:  # noqa: BLE001
            for m in methods:
                failures[m].append((rel, f"preparation failed: {type(e).__name__}: {e}"))
            continue
        prep = time.perf_counter() - t0
        candidates = meta.get("candidates")
        if candidates is None:
            candidates = sorted({service_of(c) for c in columns})
        found = root_cause in candidates
        if not found:
            absent.append(rel)
        for m in methods:
            t1 = time.perf_counter()
            ranks, error = run_method(funcs[m], data, inject_time, dataset)
            seconds = prep + time.perf_counter() - t1
            if error is not None:
                failures[m].append((rel, error))
                continue
            s_ranks = service_ranking(ranks, service_of)
            restore = meta.get("service_names") or {}
            rows[m].append(
                {
                    "case": rel,
                    "fault": fault,
                    "hit": [root_cause in s_ranks[:k] for k in KS],
                    "n": len(candidates),
                    "found": found,
                    "seconds": seconds,
                    # in the case's own names (label.json's service_names undone), as
                    # `rootcause eval --predictions` names them
                    "top5": [restore.get(s, s) for s in s_ranks[:5]],
                }
            )

    results = []
    for m in methods:
        summary = summarize(rows[m]) or {"cases": 0, "overall": None, "chance": None}
        by_fault = {}
        for fault in sorted({r["fault"] for r in rows[m]}):
            by_fault[fault] = summarize([r for r in rows[m] if r["fault"] == fault])
        results.append(
            {
                "ranker": m,
                "source": f"RCAEval {RCAEVAL_VERSION}",
                **summary,
                "by_fault_type": by_fault,
                "seconds_per_case": (sum(r["seconds"] for r in rows[m]) / len(rows[m])) if rows[m] else None,
                "failed": [{"case": c, "error": e} for c, e in failures[m]],
                "per_case": [{k: r[k] for k in ("case", "fault", "top5", "n")} | {"hit1": r["hit"][0]} for r in rows[m]],
            }
        )
    return {
        "dir": os.path.abspath(root),
        "rcaeval": RCAEVAL_VERSION,
        "length_minutes": length,
        "dataset_arg": dataset,
        "cases_found": len(cases),
        "unlabelled_skipped": unlabelled,
        "root_cause_not_in_candidates": absent,
        "results": results,
    }


def fmt(x, width=6):
    return f"{x:{width}.3f}" if isinstance(x, (int, float)) else f"{'n/a':>{width}}"


def print_report(report, out):
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p(f"RCAEval {report['rcaeval']} on {report['dir']}: {report['cases_found']} case dirs, "
      f"windows of {report['length_minutes']} min ({report['length_minutes'] * 60 // 2} rows each side)")
    if report["unlabelled_skipped"]:
        p(f"  {len(report['unlabelled_skipped'])} unlabelled cases skipped")
    if report["root_cause_not_in_candidates"]:
        p(f"  {len(report['root_cause_not_in_candidates'])} cases whose root cause has no column (count as misses)")
    p(f"{'method':<8} {'fault':<16} {'cases':>5} {'AC@1':>6} {'AC@3':>6} {'AC@5':>6} {'Avg@5':>6}   "
      f"{'chance':>6} {'AC@3':>6} {'AC@5':>6} {'Avg@5':>6}")
    for r in report["results"]:
        groups = [("(all)", r)] + list(r["by_fault_type"].items())
        for name, g in groups:
            if not g or not g.get("overall"):
                p(f"{r['ranker']:<8} {name:<16} {0:>5}")
                continue
            o, c = g["overall"], g["chance"]
            p(f"{r['ranker']:<8} {name:<16} {g['cases']:>5} {fmt(o['ac1'])} {fmt(o['ac3'])} {fmt(o['ac5'])} "
              f"{fmt(o['avg5'])}   {fmt(c['ac1'])} {fmt(c['ac3'])} {fmt(c['ac5'])} {fmt(c['avg5'])}")
        p(f"{r['ranker']:<8} seconds per case: {fmt(r['seconds_per_case'], 0)}")
    failed = [(r["ranker"], f) for r in report["results"] for f in r["failed"]]
    if failed:
        p("")
        p("!" * 78)
        p(f"!! {len(failed)} FAILED RUNS: these cases are NOT in the figures above; the figures are not comparable")
        for m, f in failed:
            p(f"!! {m} on {f['case']}: {f['error'].strip().splitlines()[0]}")
        p("!" * 78)


# ---------------------------------------------------------------- table


def load_json_output(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        # a tool may log before its JSON line; take the last line that parses
        for line in reversed(text.strip().splitlines()):
            line = line.strip()
            if line.startswith("{"):
                return json.loads(line)
        raise SystemExit(f"{path}: no JSON object in it")


def read_predictions(path):
    """{case id: ranking} from `rootcause eval --predictions` JSON lines."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{number}: not JSON: {e}")
            out[row["case"]] = list(row.get("ranking") or [])
    return out


def top1_agreement(peer_result, ours):
    """(agreeing, compared, unmatched) over the cases RCAEval ranked and we predicted.

    RCAEval's per_case rows and our predictions are both keyed by the case's path
    relative to the dataset root (`ts-x_cpu-contention/1`)."""
    agree = compared = 0
    unmatched = []
    for row in peer_result.get("per_case", []):
        ranking = ours.get(row["case"])
        if ranking is None:
            unmatched.append(row["case"])
            continue
        compared += 1
        theirs = row["top5"][0] if row["top5"] else None
        agree += int(bool(ranking) and ranking[0] == theirs)
    return agree, compared, unmatched


def table(args):
    rows = []
    peers = None
    if args.peers:
        peers = load_json_output(args.peers)
        for r in peers["results"]:
            note = f" ({len(r['failed'])} FAILED)" if r["failed"] else ""
            rows.append((r["ranker"] + note, r["source"], "rcaeval", r))
    for spec in args.ours or []:
        data, _, path = spec.partition("=")
        r = load_json_output(path)
        rows.append((str(r.get("ranker", "?")), "rootcause", data, r))
    header = f"{'method':<22} {'source':<14} {'data':<12} {'cases':>5} {'AC@1':>6} {'AC@3':>6} {'AC@5':>6} {'Avg@5':>6} {'chance@1':>8} {'s/case':>8}"
    print(header)
    print("-" * len(header))
    for method, source, data, r in rows:
        o = r.get("overall") or {}
        c = r.get("chance") or {}
        spc = r.get("seconds_per_case")
        print(f"{method:<22} {source:<14} {data:<12} {r.get('cases', 0):>5} {fmt(o.get('ac1'))} {fmt(o.get('ac3'))} "
              f"{fmt(o.get('ac5'))} {fmt(o.get('avg5'))} {fmt(c.get('ac1'), 8)} "
              f"{(f'{spc:8.4f}' if isinstance(spc, (int, float)) else 'n/a'):>8}")
    print("service-level AC@k. Ties: RCAEval rows keep the order each method returns (a stable sort by")
    print("score, so tied columns stay in data.csv's column order); rootcause rows count ties")
    print("pessimistically (a root cause tied with other services ranks below all of them).")
    print("chance = a uniformly random ranking of the same candidates; a case whose root cause is not")
    print("a candidate counts 0, for chance as for the methods.")

    below = []
    if args.predictions:
        by_method = {r["ranker"]: r for r in (peers or {}).get("results", [])}
        print()
        print("top-1 agreement, RCAEval vs rootcause, on the same converted cases:")
        for spec in args.predictions:
            method, _, path = spec.partition("=")
            if method not in by_method:
                print(f"  {method:<8} n/a: no RCAEval results for {method}")
                continue
            agree, compared, unmatched = top1_agreement(by_method[method], read_predictions(path))
            share = fmt(agree / compared) if compared else "   n/a"
            line = f"  {method:<8} {share} ({agree}/{compared} cases agree on the top-1 service)"
            if unmatched:
                line += f"; {len(unmatched)} RCAEval cases without a rootcause prediction, e.g. {unmatched[0]}"
            print(line)
            if args.min_agreement is not None and (not compared or agree / compared < args.min_agreement):
                below.append(method)
        print("  (rootcause's top-1 among tied services is its ranking's order, not pessimistic)")
    return below


# ---------------------------------------------------------------- main


def main(argv):
    if argv[:1] == ["table"]:
        ap = argparse.ArgumentParser(prog="rcaeval_peers.py table")
        ap.add_argument("--peers", help="this script's --json output")
        ap.add_argument("--ours", action="append", help="DATA=FILE: a `rootcause eval --json` output")
        ap.add_argument("--predictions", action="append",
                        help="METHOD=FILE: `rootcause eval --ranker METHOD --predictions FILE` on the same "
                             "cases; prints the share of cases whose top-1 service agrees with RCAEval's METHOD")
        ap.add_argument("--min-agreement", type=float,
                        help="exit 3 if a method's top-1 agreement falls below this share: rootcause's "
                             "reference rankers must compute what RCAEval's do")
        below = table(ap.parse_args(argv[1:]))
        if below:
            print(f"\nrcaeval_peers.py: top-1 agreement below the required share for: {', '.join(below)}",
                  file=sys.stderr)
            return 3
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="root of RCAEval-format cases")
    ap.add_argument("--length", type=int, default=10,
                    help="minutes of RCAEval's window (main.py's --length; 10 as its process() "
                         "falls back to and as RCAEval's benchmark reports use): length*60//2 rows "
                         "on each side of the inject time")
    ap.add_argument("--methods", default="baro,nsigma")
    ap.add_argument("--dataset", default="rootcause-peers",
                    help="the dataset= argument; baro/nsigma only test it for None (None skips "
                         "dropping the time and constant columns), so any other name is equivalent")
    ap.add_argument("--json", action="store_true", help="JSON report on stdout, text on stderr")
    args = ap.parse_args(argv)
    report = evaluate(args.dir, [m.strip() for m in args.methods.split(",") if m.strip()], args.length, args.dataset)
    print_report(report, sys.stderr if args.json else sys.stdout)
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        print()
    return 1 if any(r["failed"] for r in report["results"]) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
