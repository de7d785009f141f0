"""Peer of `microreboot bench infer`: the kernel's recovery-group algorithm on networkx.

Same steps as kernel/src/groups.rs: a breadth-first scope over synchronous edges, each
service's unseen callees admitted heaviest first (ties by service id) up to 30 services;
strongly connected components of the scope; groups ordered callees first, ready groups taken
by breadth-first rank; members with more than 20 distinct callers need a drain. It checks
that every answer equals the kernel's (`NAME.scopes.txt`), then times queries on the
maintained graph and rebuild-from-window + query, each call on its own.

    python benches/peers/recovery_groups.py DIR [--queries N] [--rebuilds N]

DIR is what `microreboot bench infer --export DIR` wrote.
"""

import argparse
import csv
import heapq
import time

import networkx as nx

MAX_GROUP_SIZE = 30
HUB_FAN_IN = 20
SYNC = {"rpc", "cache", "db"}


def load_graph(prefix):
    ids = {}
    with open(prefix + ".services.txt") as f:
        for i, line in enumerate(f):
            ids[line.rstrip("\n")] = i
    g = nx.DiGraph()
    g.add_nodes_from(ids)
    with open(prefix + ".edges.csv") as f:
        for row in csv.DictReader(f):
            g.add_edge(row["caller"], row["callee"], kind=row["kind"], weight=int(row["weight"]))
    return g, ids


def recovery_groups(g, ids, symptom, cap=MAX_GROUP_SIZE):
    """Groups in restart order (lists of names), and the hubs."""
    members = [symptom]
    seen = {symptom}
    head = 0
    while head < len(members):
        u = members[head]
        head += 1
        cands = [
            (-d["weight"], ids[v], v)
            for v, d in g.succ[u].items()
            if d["kind"] in SYNC and v not in seen
        ]
        room = cap - len(members)
        if room == 0:
            if cands:
                break
            continue
        cands.sort()
        for _, _, v in cands[:room]:
            seen.add(v)
            members.append(v)
        if room < len(cands):
            break
    rank = {m: i for i, m in enumerate(members)}
    sub = nx.DiGraph()
    sub.add_nodes_from(members)
    sub.add_edges_from(
        (u, v) for u in members for v, d in g.succ[u].items() if v in rank and d["kind"] in SYNC
    )
    comps = [sorted(c, key=rank.get) for c in nx.strongly_connected_components(sub)]
    comp_of = {m: i for i, c in enumerate(comps) for m in c}
    deps = [set() for _ in comps]  # components each component depends on (its callees)
    dependents = [set() for _ in comps]
    for u, v in sub.edges():
        cu, cv = comp_of[u], comp_of[v]
        if cu != cv:
            deps[cu].add(cv)
            dependents[cv].add(cu)
    waiting = [len(d) for d in deps]
    comp_rank = [rank[c[0]] for c in comps]
    ready = [(comp_rank[c], c) for c in range(len(comps)) if waiting[c] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, c = heapq.heappop(ready)
        order.append(comps[c])
        for d in dependents[c]:
            waiting[d] -= 1
            if waiting[d] == 0:
                heapq.heappush(ready, (comp_rank[d], d))
    hubs = [m for m in members if g.in_degree(m) > HUB_FAN_IN]
    return order, hubs


def rebuild(calls):
    """The graph from one window of calls, as the windowed graph builds it."""
    g = nx.DiGraph()
    for caller, callee, kind in calls:
        if caller == callee:
            continue
        e = g.get_edge_data(caller, callee)
        if e is None:
            g.add_edge(caller, callee, kind=kind, weight=1)
        else:
            e["weight"] += 1
            if e["kind"] not in SYNC and kind in SYNC:
                e["kind"] = kind
    return g


def percentiles(samples_ns):
    s = sorted(samples_ns)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))] / 1000.0
    return f"n={len(s)} p50={pick(0.5):.3f} µs p99={pick(0.99):.3f} µs max={s[-1] / 1000.0:.3f} µs"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--rebuilds", type=int, default=20)
    args = ap.parse_args()
    for name in ("alibaba-5459", "meta-392"):
        prefix = f"{args.dir}/{name}"
        g, ids = load_graph(prefix)
        with open(prefix + ".symptoms.txt") as f:
            symptoms = [line.rstrip("\n") for line in f]
        with open(prefix + ".scopes.txt") as f:
            expected = [line.rstrip("\n") for line in f]
        same = 0
        for s, want in zip(symptoms, expected):
            groups, _ = recovery_groups(g, ids, s)
            same += " | ".join(" ".join(c) for c in groups) == want
        print(f"{name}: {same} of {len(symptoms)} answers identical to the kernel's")
        samples = []
        for i in range(args.queries):
            s = symptoms[i % len(symptoms)]
            t = time.perf_counter_ns()
            recovery_groups(g, ids, s)
            samples.append(time.perf_counter_ns() - t)
        print(f"{name}: networkx query on the maintained graph: {percentiles(samples)}")
        with open(prefix + ".window.csv") as f:
            calls = [(r["caller"], r["callee"], r["kind"]) for r in csv.DictReader(f)]
        samples = []
        for j in range(args.rebuilds):
            s = symptoms[j % len(symptoms)]
            t = time.perf_counter_ns()
            h = rebuild(calls)
            # Ties break by id in order of first appearance, as in the rebuilt windowed graph.
            hid = {n: i for i, n in enumerate(h.nodes)}
            if s in h:
                recovery_groups(h, hid, s)
            samples.append(time.perf_counter_ns() - t)
        print(
            f"{name}: networkx rebuild from a {len(calls)}-call window, then query: "
            f"{percentiles(samples)}"
        )


if __name__ == "__main__":
    main()
