"""Markdown table and gnuplot PNGs from a benchmark result (see report.py)."""
import os
import shutil
import subprocess

from report import med


def ms(s):
    """median (min-max) in ms, from microsecond stats."""
    if not s:
        return "n/a"
    return f"{num(s['median'] / 1e3)} ({num(s['min'] / 1e3)}-{num(s['max'] / 1e3)})"


def us(s):
    if not s:
        return "n/a"
    return f"{num(s['median'])} ({num(s['min'])}-{num(s['max'])})"


def kib(s):
    if not s:
        return "n/a"
    m = s["median"]
    return f"{num(m / 1024)} MiB" if m >= 1024 else f"{m:.0f} KiB"


def num(v):
    """Plain digits, no exponent: 1640, 23.4, 0.112."""
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def x(v, digits=2):
    return "n/a" if v is None else f"{v:.{digits}f}x"


def _table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def markdown(res, path):
    m = res["meta"]
    L = ["# libnuwa benchmark results", "",
         f"- date: {m['date']}{' (SMOKE run: tiny sizes, one repetition, not results)' if m['smoke'] else ''}",
         f"- machine: {m['nproc']} CPUs, {m['cpu']}, {m.get('mem_total_mib')} MiB RAM",
         f"- kernel {m['kernel']}, {m['glibc']}",
         f"- 1-minute load average: {m.get('loadavg_start'):.2f} at start, "
         f"{m.get('loadavg_end') or 0:.2f} at end (other work on the machine adds noise)",
         f"- command: `{m['command']}` (git {m.get('git')}), took {m.get('duration_s')} s",
         "- cells are median (min-max) over the repetitions", ""]
    L += ["## Targets", ""]
    L += _table(["target", "goal", "measured", "met"],
                [[t["name"], t["target"],
                  "n/a" if t["value"] is None else f"{num(t['value'])} {t['unit']}",
                  {True: "yes", False: "**no**", None: "n/a"}[t["met"]] +
                  (f" ({t['note']})" if t.get("note") else "")] for t in res["targets"]])
    if res["spawn"]:
        L += ["", "## 1. Spawn latency (ms)", "",
              "spawn = `nuwa_spawn(template, 0)` called in a launcher process until every "
              "thread of the child has run (template mode: the template, a second copy of "
              "the program, froze itself once with `nuwa_freeze()`); raw fork = `fork` "
              "syscall of a template-sized process until the copy's only thread runs; "
              "cold = `posix_spawn` of the same program without libnuwa until it has rebuilt "
              "the warmed state (heap, threads, channels, warm-up) and every thread has run.", ""]
        L += _table(["T", "heap MiB", "raw fork", "spawn", "spawn: child's main runs",
                     "spawn: reply", "spawn/fork", "cold start", "cold/spawn"],
                    [[c["threads"], c["heap_mib"], ms(c["fork_us"]), ms(c["spawn_us"]),
                      ms(c["spawn_main_us"]), ms(c.get("spawn_reply_us")),
                      x(c["spawn_over_fork"]), ms(c["cold_us"]),
                      x(c["cold_over_spawn"], 0)] for c in res["spawn"]])
        L += ["", "### 1a. Spawn from the pool (ms)", "",
              "pool = the same `nuwa_spawn(template, 0)` to the same template while its pool "
              "(`nuwa_pool(template, 2)`) holds ready children: forked ahead, every thread "
              "cloned back, none running; the request only sends what is particular to it and "
              "releases one.  Interleaved with the raw fork and the spawn without a pool.", ""]
        L += _table(["T", "heap MiB", "raw fork", "spawn (no pool)", "pool hit",
                     "pool: child's main runs", "pool: reply", "pool/fork", "pool/spawn"],
                    [[c["threads"], c["heap_mib"], ms(c["fork_us"]), ms(c["spawn_us"]),
                      ms(c.get("pool_us")), ms(c.get("pool_main_us")), ms(c.get("pool_reply_us")),
                      x(c.get("pool_over_fork")), x(c.get("pool_over_spawn"))]
                     for c in res["spawn"]])
        L += ["", "### 1b. Clone mode: freeze + fork + resume everyone (ms)", "",
              "clone = `nuwa_clone(1)` in the template-sized process itself until every "
              "thread of the copy has run: each copy pays a freeze, the descriptor "
              "snapshot and the release of the caller's threads.  Same run, interleaved.", ""]
        L += _table(["T", "heap MiB", "raw fork", "clone", "clone: copy's main runs",
                     "nuwa_clone call", "clone/fork", "cold/clone"],
                    [[c["threads"], c["heap_mib"], ms(c["fork_us"]), ms(c.get("clone_us")),
                      ms(c.get("clone_main_us")), ms(c.get("clone_parent_us")),
                      x(c.get("clone_over_fork")), x(c.get("cold_over_clone"), 0)]
                     for c in res["spawn"]])
    b = res.get("burst")
    if b:
        L += ["", "### 1c. A burst of spawns", "",
              f"{b['spawns']} `nuwa_spawn()` back to back (each child killed once every thread "
              f"ran, not waited for) from a template (T={b['threads']}, {b['heap_mib']} MiB) "
              f"with a pool of {b['pool']}: the first {b['pool']} come from the pool, the rest "
              "are forked fresh while the pool refills between requests; against "
              "`posix_spawn` (fork+exec) of the same program, one after another, until it has "
              "rebuilt its warmed state.  Memory: USS of each pooled child "
              "(smaps_rollup) before the burst, against the template's RSS.", ""]
        L += _table(["from the pool", "after the pool", "burst total", "spawns/s",
                     "fork+exec", "fork+exec per s", "ratio", "pooled USS", "template RSS"],
                    [[ms(b.get("from_pool_us")), ms(b.get("after_pool_us")),
                      "n/a" if b.get("total_us") is None else f"{num(b['total_us'] / 1e3)} ms",
                      "n/a" if b.get("spawns_per_s") is None else num(b["spawns_per_s"]),
                      ms(b.get("cold_us")),
                      "n/a" if b.get("fork_exec_per_s") is None else num(b["fork_exec_per_s"]),
                      x(b.get("rate_over_fork_exec"), 0), kib(b.get("pooled_uss_kib")),
                      kib({"median": b["template_rss_kib"]}) if b.get("template_rss_kib") else "n/a"]])
        lat = b.get("latency_us") or []
        if lat:
            L += ["", "Latency of each spawn, in order (ms): " +
                  ", ".join(num(v / 1e3) for v in lat)]
    if res["freeze"]:
        L += ["", "## 2. Freeze latency (us)", "",
              "freeze = libnuwa's own `freeze took N us` (trigger to every thread parked, "
              "NUWA_LOG=debug); the `nuwa_clone(1)` call in the caller includes freeze, "
              "fork and resume of the caller's side.", ""]
        L += _table(["T", "load", "freeze (libnuwa)", "nuwa_clone(1) call", "clone (all threads ran)"],
                    [[c["threads"], "mutex+pipe hammering" if c["load"] else "idle",
                      us(c["freeze_log_us"]), us(c["clone_call_us"]), us(c.get("clone_us"))]
                     for c in res["freeze"]])
    if res["memory"]:
        L += ["", "## 3. Memory of copies (from /proc/PID/smaps_rollup)", "",
              "USS = Private_Clean + Private_Dirty; medians over the copies made at once; "
              "\"touched\" = after each copy wrote one byte in every page of its own tenth "
              "of the heap.", ""]
        rows = []
        for c in res["memory"]:
            n, f = c["nuwa"] or {}, c["fork"] or {}
            pct = c["uss_after_spawn_pct_of_rss"]
            rows.append([c["threads"], c["heap_mib"], c["children"],
                         kib({"median": c["template_rss_kib"]}) if c["template_rss_kib"] else "n/a",
                         kib(n.get("uss_after_spawn_kib")),
                         "n/a" if pct is None else f"{pct:.2f}%",
                         kib(n.get("pss_after_spawn_kib")), kib(n.get("uss_after_touch_kib")),
                         kib(f.get("uss_after_spawn_kib")), kib(f.get("uss_after_touch_kib"))])
        L += _table(["T", "heap MiB", "copies", "template RSS", "copy USS", "USS/RSS",
                     "copy PSS", "copy USS touched", "raw-fork USS", "raw-fork USS touched"], rows)
    ov = res.get("overhead")
    if ov:
        L += ["", "## 4. Interposition overhead (ns per op)", ""]
        L += _table(["op", "iterations", "native", "preloaded", "preloaded/native"],
                    [[r["op"], r["iters"], us(r["native_ns"]), us(r["preload_ns"]),
                      x(r["preload_over_native"], 3)] for r in ov["ops"]])
        cg = res.get("callgrind") or {}
        if cg.get("error"):
            L += ["", f"callgrind: {cg['error']}"]
        elif cg:
            L += ["", "Instructions per uncontended `pthread_mutex_lock`+`unlock` pair "
                  "(callgrind, slope between two loop lengths):", ""]
            L += _table(["native", "preloaded", "extra"],
                        [[f"{cg['native_instr_per_pair']:.2f}", f"{cg['preload_instr_per_pair']:.2f}",
                          f"{cg['extra_instr_per_pair']:.2f}"]])
    if res.get("peers"):
        L += ["", "## 5. Checkpoint/restore peers", ""]
        L += [f"- {k}: {v['note']}" for k, v in res["peers"].items()]
    errs = [(sec, c) for sec in ("spawn", "freeze", "memory") for c in res[sec] if c.get("errors")]
    if b and b.get("errors"):
        errs.append(("burst", b))
    if errs or (ov and ov.get("errors")):
        L += ["", "## Errors", ""]
        for sec, c in errs:
            L += [f"- {sec} T={c['threads']} {('H=%s' % c['heap_mib']) if 'heap_mib' in c else ''}: "
                  + "; ".join(c["errors"])]
        for e in (ov or {}).get("errors", []):
            L += [f"- overhead: {e}"]
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")
    return path


# ---- plots ---------------------------------------------------------------------

def _block(name, rows):
    """A gnuplot datablock; rows with a missing value are left out."""
    rows = [r for r in rows if all(v is not None and v > 0 for v in r)]
    return [f"${name} << EOD"] + [" ".join(f"{v:.6g}" for v in r) for r in rows] + ["EOD"], bool(rows)


def _spawn_script(res):
    s, blocks, left, right = res["spawn"], [], [], []
    ts = sorted({c["threads"] for c in s})
    hs = sorted({c["heap_mib"] for c in s})
    for i, t in enumerate(ts):
        cs = sorted((c for c in s if c["threads"] == t), key=lambda c: c["heap_mib"])
        for key, lab, dash in (("spawn_us", "spawn", 1), ("fork_us", "raw fork", 2), ("cold_us", "cold start", 3),
                               ("clone_us", "clone", 4)):
            b, ok = _block(f"h_{key}_{t}", [(c["heap_mib"], c[key]["median"] / 1e3, c[key]["min"] / 1e3,
                                              c[key]["max"] / 1e3) for c in cs if c[key]])
            if ok:
                blocks += b
                left.append(f"$h_{key}_{t} using 1:2:3:4 with yerrorlines lc {i + 1} dt {dash} "
                            f"title '{lab} T={t}'")
    for i, h in enumerate(hs):
        cs = sorted((c for c in s if c["heap_mib"] == h), key=lambda c: c["threads"])
        for key, lab, dash in (("spawn_us", "spawn", 1), ("fork_us", "raw fork", 2), ("clone_us", "clone", 4)):
            b, ok = _block(f"t_{key}_{h}", [(c["threads"], med(c[key]) / 1e3) for c in cs if c[key]])
            if ok:
                blocks += b
                right.append(f"$t_{key}_{h} using 1:2 with linespoints lc {i + 1} dt {dash} "
                             f"title '{lab} H={h} MiB'")
    return blocks, [
        "set multiplot layout 1,2 title 'Spawn latency (median, bars: min-max)'",
        "set logscale xy; set grid; set key top left font ',9'",
        "set xlabel 'touched heap (MiB)'; set ylabel 'ms'",
        "plot " + (", ".join(left) or "1/0 notitle"),
        "set xlabel 'threads'",
        "plot " + (", ".join(right) or "1/0 notitle"),
        "unset multiplot"]


def _memory_script(res):
    mem, blocks, plots = res["memory"], [], []
    series = (("rss", "template RSS"), ("nuwa.uss_after_spawn_kib", "copy USS after spawn"),
              ("nuwa.pss_after_spawn_kib", "copy PSS after spawn"),
              ("nuwa.uss_after_touch_kib", "copy USS after touching 10%"),
              ("fork.uss_after_spawn_kib", "raw-fork copy USS after spawn"))

    def val(c, key):
        if key == "rss":
            return c["template_rss_kib"] and c["template_rss_kib"] / 1024
        rnd, fld = key.split(".")
        v = med((c[rnd] or {}).get(fld))
        return None if v is None else v / 1024

    for axis, fixed, var in (("h", "threads", "heap_mib"), ("t", "heap_mib", "threads")):
        common = {}
        for c in mem:
            common.setdefault(c[fixed], []).append(c)
        base = max(common.items(), key=lambda kv: len(kv[1]))[1] if common else []
        base = sorted(base, key=lambda c: c[var])
        lines = []
        for i, (key, lab) in enumerate(series):
            b, ok = _block(f"{axis}_{i}", [(c[var], val(c, key)) for c in base])
            if ok:
                blocks += b
                lines.append(f"${axis}_{i} using 1:2 with linespoints title '{lab}'")
        fixed_v = base[0][fixed] if base else "?"
        plots.append((var, fixed, fixed_v, lines))
    cmds = ["set multiplot layout 1,2 title 'Memory of copies (median over copies)'",
            "set logscale xy; set grid; set key top left font ',9'; set ylabel 'MiB'"]
    for var, fixed, fv, lines in plots:
        cmds += [f"set xlabel '{'touched heap (MiB)' if var == 'heap_mib' else 'threads'}"
                 f" ({'T' if fixed == 'threads' else 'H'}={fv})'",
                 "plot " + (", ".join(lines) or "1/0 notitle")]
    return blocks, cmds + ["unset multiplot"]


def _freeze_script(res):
    idle = sorted((c for c in res["freeze"] if not c["load"]), key=lambda c: c["threads"])
    load = [c for c in res["freeze"] if c["load"]]
    blocks, lines = [], []
    for key, lab in (("freeze_log_us", "freeze (libnuwa log)"), ("clone_call_us", "nuwa_clone(1) call")):
        b, ok = _block(f"f_{key}", [(c["threads"], med(c[key]), (c[key] or {}).get("min"),
                                     (c[key] or {}).get("max")) for c in idle if c[key]])
        if ok:
            blocks += b
            lines.append(f"$f_{key} using 1:2:3:4 with yerrorlines title '{lab}, idle'")
        b, ok = _block(f"l_{key}", [(c["threads"], med(c[key])) for c in load if c[key]])
        if ok:
            blocks += b
            lines.append(f"$l_{key} using 1:2 with points pt 7 ps 1.5 title '{lab}, under load'")
    return blocks, ["set title 'Freeze latency (median, bars: min-max)'",
                    "set logscale xy; set grid; set key top left font ',9'",
                    "set xlabel 'threads'; set ylabel 'us'",
                    "plot " + (", ".join(lines) or "1/0 notitle")]


def plots(res, out):
    gp = shutil.which("gnuplot")
    if not gp:
        print("bench/run: gnuplot not found (Debian: gnuplot-nox): no PNG plots")
        return []
    made = []
    for name, fn, size, have in (("spawn", _spawn_script, "1400,560", res["spawn"]),
                                 ("memory", _memory_script, "1400,560", res["memory"]),
                                 ("freeze", _freeze_script, "800,560", res["freeze"])):
        if not have:
            continue
        png = os.path.join(out, name + ".png")
        blocks, cmds = fn(res)
        script = blocks + [f"set terminal pngcairo size {size} font ',10' noenhanced",
                           "set format y '%g'",
                           f"set output '{png}'"] + cmds + ["unset output"]
        gpf = os.path.join(out, name + ".gp")
        with open(gpf, "w") as f:
            f.write("\n".join(script) + "\n")
        r = subprocess.run([gp, gpf], capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists(png):
            print(f"bench/run: gnuplot failed for {gpf}: {r.stderr.strip()[:300]}")
        else:
            made.append(png)
    return made
