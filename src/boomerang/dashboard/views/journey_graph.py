"""A journey's node graph laid out for drawing as inline SVG: boxes, edges and labels, computed here.

A small layered (Sugiyama-style) layout, enough for journeys of a few dozen nodes:

1. a depth-first walk from `start` finds the edges that close a loop (back edges);
2. without them the graph is acyclic: each node's layer is its longest distance from `start`, so an
   exit shared by several paths sits below all of them (rows, top to bottom);
3. an edge that spans several layers gets a virtual point in each layer between, so it bends around
   the boxes instead of crossing them;
4. each layer is ordered by the position of its parents (the barycenter, each parent's ports left to
   right: yes before no, variants in their order) and placed under them, pushed apart where it overlaps;
5. forward edges are smooth curves from a port at the bottom of their box to the top of the next;
   back edges leave on the right and come back to their target's right side.

Only geometry and plain text come out of here; the template writes the markup (autoescaped).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from boomerang.journeys.definition import (
    Approval,
    Branch,
    Exit,
    Journey,
    Loyalty,
    Send,
    Split,
    UpdateProfile,
    Wait,
    WaitEvent,
    WaitUntil,
    Webhook,
)

BOX_W = 236
LINE = 16
TOP = 24  # the title's row
PAD = 10
GAP_X = 36
GAP_Y = 64  # room for the edge labels
VIRTUAL_W = 14
MARGIN = 20
CHARS = 32  # what fits on a line of a box
CHAR_PX = 6.6  # a label's width per character (12px sans-serif, roughly)


@dataclass
class Box:
    index: int
    name: str
    type: str
    lines: list[tuple[str, str]]  # (text, css class)
    tip: str  # the full text, for the box's <title>
    busy: bool  # customers are there now
    x: float = 0
    y: float = 0
    w: float = BOX_W
    h: float = 0

    @property
    def title(self) -> str:
        return short(self.name, 22)


@dataclass
class Edge:
    d: str
    label: str
    lx: float = 0
    ly: float = 0
    lw: float = 0
    back: bool = False
    points: list[tuple[float, float]] = field(default_factory=list)  # a forward edge's way down, before `d`


@dataclass
class Graph:
    width: float
    height: float
    boxes: list[Box]
    edges: list[Edge]
    layers: int = 0


@dataclass
class _Item:  # a box, or a virtual point of a long edge, in a layer
    key: Any
    layer: int
    w: float
    preds: list[tuple[_Item, float]] = field(default_factory=list)  # (parent, port fraction)
    x: float = 0  # centre


def short(text: str, n: int = CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def duration(seconds: float) -> str:
    parts, left = [], round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size} {unit}")
            left %= size
    return " ".join(parts) or "0 s"


def edges_of(node) -> list[tuple[str, str]]:
    """(target, label) of a node's ways out, in the order they are drawn left to right."""
    if isinstance(node, Branch):
        return [(node.yes, "yes"), (node.no, "no")]
    if isinstance(node, Split):
        total = sum(v.weight for v in node.variants)
        return [(v.next, f"{v.name} {v.weight / total:.0%}") for v in node.variants]
    if isinstance(node, WaitEvent):
        out = [(node.next, "timeout")] if node.next else []
        return out + ([(node.on_event, "on_event")] if node.on_event else [])
    if isinstance(node, Approval):
        return [(node.next, "approved")] + ([(node.on_reject, "on_reject")] if node.on_reject else [])
    if isinstance(node, Exit):
        return []
    return [(node.next, "")] if node.next else []


def settings(node) -> list[str]:
    """The node's key settings, a line or two of text."""
    if isinstance(node, Wait):
        return [f"wait {duration(node.seconds)}"]
    if isinstance(node, WaitUntil):
        return [f"until {node.time} local time"]
    if isinstance(node, WaitEvent):
        return [
            f"for {node.event}",
            f"timeout {duration(node.timeout_hours * 3600)}" + (" · same key" if node.same_key else ""),
        ]
    if isinstance(node, Branch):
        return [f"if {json.dumps(node.rule, ensure_ascii=False)}"]
    if isinstance(node, Split):
        return [" · ".join(v.name for v in node.variants)]
    if isinstance(node, Send):
        via = " → ".join((node.channel, *node.fallback))
        return [f"{via}", f"template {node.template}" + (" · drop if capped" if node.when_capped == "drop" else "")]
    if isinstance(node, Loyalty):
        if node.action == "award_points":
            return [f"award {node.points:,} points"]
        return [f"promo code −{node.discount_percent:g}%, {node.valid_days} days"]
    if isinstance(node, Approval):
        return [node.note or "a person decides"]
    if isinstance(node, UpdateProfile):
        return [f"set {node.attribute} = {json.dumps(node.value, ensure_ascii=False)}"]
    if isinstance(node, Webhook):
        return [f"call {node.url}"]
    return ["end of the journey"]


def _counts(counts: dict[str, Any]) -> list[tuple[str, str]]:
    lines = []
    here = counts.get("here") or {}
    if here:
        lines.append(("here: " + " · ".join(f"{n:,} {s}" for s, n in sorted(here.items())), "here"))
    messages = counts.get("messages") or {}
    if messages:
        lines.append(
            ("messages: " + " · ".join(f"{n:,} {s.replace('_', ' ')}" for s, n in sorted(messages.items())), "msgs")
        )
    if counts.get("conversions"):
        lines.append((f"conversions: {counts['conversions']:,} · {counts.get('revenue') or 0:,.2f}", "conv"))
    return lines or [("nobody yet", "none")]


def _walk(journey: Journey) -> tuple[list[str], list[tuple[str, str, str, int, int]], set[int]]:
    """Nodes in the order first reached, every edge (source, target, label, port, ports), the back edges' indexes."""
    order: list[str] = []
    edges: list[tuple[str, str, str, int, int]] = []
    for name in journey.nodes:
        outs = edges_of(journey.nodes[name])
        edges += [(name, target, label, k, len(outs)) for k, (target, label) in enumerate(outs)]
    out_of: dict[str, list[int]] = {n: [] for n in journey.nodes}
    for i, (source, *_rest) in enumerate(edges):
        out_of[source].append(i)
    state: dict[str, int] = {}  # 1 on the stack, 2 finished
    back: set[int] = set()
    roots = [journey.start] + [n for n in journey.nodes if n != journey.start]  # every node, even unreachable ones
    for root in roots:
        if root in state:
            continue
        stack = [(root, iter(out_of[root]))]
        state[root] = 1
        order.append(root)
        while stack:
            node, todo = stack[-1]
            i = next(todo, None)
            if i is None:
                state[node] = 2
                stack.pop()
                continue
            target = edges[i][1]
            if state.get(target) == 1:
                back.add(i)
            elif target not in state:
                state[target] = 1
                order.append(target)
                stack.append((target, iter(out_of[target])))
    return order, edges, back


def layout(journey: Journey, node_counts: dict[str, dict[str, Any]]) -> Graph:
    order, edges, back = _walk(journey)
    rank = {n: i for i, n in enumerate(order)}
    layer = dict.fromkeys(order, 0)
    forward = [e for i, e in enumerate(edges) if i not in back]
    for _ in range(len(order)):  # longest path on the acyclic rest (few nodes: relax until stable)
        changed = False
        for source, target, *_ in forward:
            if layer[target] < layer[source] + 1:
                layer[target], changed = layer[source] + 1, True
        if not changed:
            break

    boxes: dict[str, Box] = {}
    for i, name in enumerate(order):
        node = journey.nodes[name]
        texts = settings(node)
        counts = _counts(node_counts.get(name, {}))
        lines = [(short(t), "setting") for t in texts] + counts
        here = node_counts.get(name, {}).get("here") or {}
        boxes[name] = Box(
            index=i,
            name=name,
            type=node.type,
            lines=lines,
            tip="\n".join([f"{name} ({node.type})", *texts, *(t for t, _ in counts)]),
            busy=any(n for s, n in here.items() if s != "done"),
            h=TOP + PAD + LINE * len(lines),
        )
    items = {name: _Item(name, layer[name], BOX_W) for name in order}
    chains: list[tuple[list[_Item], str, int]] = []  # each forward edge's items, top to bottom
    for i, (source, target, label, port, ports) in enumerate(edges):
        if i in back:
            continue
        chain, parent, frac = [items[source]], items[source], (port + 1) / (ports + 1)
        for depth in range(layer[source] + 1, layer[target]):
            virtual = _Item(("v", i, depth), depth, VIRTUAL_W, [(parent, frac)])
            chain.append(virtual)
            parent, frac = virtual, 0.5
        items[target].preds.append((parent, frac))
        chain.append(items[target])
        chains.append((chain, label, i))

    depth = max(layer.values()) + 1
    rows: list[list[_Item]] = [[] for _ in range(depth)]
    for item in sorted(items.values(), key=lambda it: rank[it.key]):
        rows[item.layer].append(item)
    for chain, _, _ in chains:
        for item in chain[1:-1]:
            rows[item.layer].append(item)
    _place(rows)

    # vertical positions: each layer as tall as its tallest box
    tops, y = [], MARGIN
    for row in rows:
        tops.append(y)
        y += max((boxes[it.key].h for it in row if it.key in boxes), default=LINE) + GAP_Y
    heights = [max((boxes[it.key].h for it in row if it.key in boxes), default=LINE) for row in rows]
    left = min(it.x - it.w / 2 for row in rows for it in row)
    shift = MARGIN - left
    for row in rows:
        for it in row:
            it.x += shift
    for name, box in boxes.items():
        box.x, box.y = items[name].x - BOX_W / 2, tops[layer[name]]

    drawn = [_forward(chain, label, boxes, tops, heights, edges[i]) for chain, label, i in chains]
    right = max(it.x + it.w / 2 for row in rows for it in row)
    for k, i in enumerate(sorted(back)):
        edge, right_used = _back(boxes[edges[i][0]], boxes[edges[i][1]], edges[i][2], boxes, k)
        drawn.append(edge)
        right = max(right, right_used)
    _spread_entries(drawn)
    return Graph(
        width=round(right + MARGIN + 40),
        height=round(y - GAP_Y + MARGIN),
        boxes=sorted(boxes.values(), key=lambda b: b.index),
        edges=drawn,
        layers=depth,
    )


def _place(rows: list[list[_Item]]) -> None:
    """Order each layer by its parents' ports and centre it under them, pushed apart where items overlap."""
    for number, row in enumerate(rows):
        if number:

            def bary(it: _Item) -> float:
                return sum(p.x - p.w / 2 + p.w * frac for p, frac in it.preds) / len(it.preds) if it.preds else 0.0

            wanted = {id(it): bary(it) for it in row}
            row.sort(key=lambda it: wanted[id(it)])
        else:
            wanted = {id(it): 0.0 for it in row}
        x = None
        for it in row:  # left to right, no overlap
            want = wanted[id(it)]
            it.x = want if x is None else max(want, x + it.w / 2 + GAP_X)
            x = it.x + it.w / 2
        if row:  # balance: as far left of the wishes as right of them
            drift = sum(it.x - wanted[id(it)] for it in row) / len(row)
            for it in row:
                it.x -= drift


def _port(box: Box, frac: float) -> tuple[float, float]:
    return box.x + box.w * frac, box.y + box.h


def _forward(
    chain: list[_Item],
    label: str,
    boxes: dict[str, Box],
    tops: list[float],
    heights: list[float],
    edge: tuple[str, str, str, int, int],
) -> Edge:
    source, target = boxes[chain[0].key], boxes[chain[-1].key]
    points = [_port(source, (edge[3] + 1) / (edge[4] + 1))]
    for virtual in chain[1:-1]:
        points += [(virtual.x, tops[virtual.layer]), (virtual.x, tops[virtual.layer] + heights[virtual.layer])]
    points.append((target.x + target.w / 2, target.y))
    result = Edge(d="", label=label, points=points)  # `d` once the entries are spread
    if label:
        (x0, y0), (x1, y1) = points[0], points[1]
        result.lx, result.ly = x0 + (x1 - x0) * 0.28, y0 + min(22.0, (y1 - y0) / 2)
        result.lw = len(label) * CHAR_PX + 10
    return result


def _spread_entries(edges: list[Edge]) -> None:
    """Edges into the same box enter at points spread along its top, in the order they come from; then
    each forward edge's path: curves across the gaps between layers, straight down through a layer."""
    into: dict[tuple[float, float], list[Edge]] = {}
    for e in edges:
        if not e.back:
            into.setdefault(e.points[-1], []).append(e)
    for group in into.values():
        group.sort(key=lambda e: e.points[-2][0])
        step = min(18.0, BOX_W / (len(group) + 1))
        for k, e in enumerate(group):
            x, y = e.points[-1]
            e.points[-1] = (x + (k - (len(group) - 1) / 2) * step, y)
    for e in edges:
        if e.back:
            continue
        d = [f"M{e.points[0][0]:.1f},{e.points[0][1]:.1f}"]
        for j, ((x0, y0), (x1, y1)) in enumerate(zip(e.points, e.points[1:])):
            if j % 2:  # through a virtual point's layer
                d.append(f"L{x1:.1f},{y1:.1f}")
            else:
                k = (y1 - y0) / 2
                d.append(f"C{x0:.1f},{y0 + k:.1f} {x1:.1f},{y1 - k:.1f} {x1:.1f},{y1:.1f}")
        e.d = " ".join(d)


def _back(source: Box, target: Box, label: str, boxes: dict[str, Box], k: int) -> tuple[Edge, float]:
    """A loop back up: out of the source's right side, up beside every box between, into the target's right side."""
    top, bottom = min(source.y, target.y), max(source.y + source.h, target.y + target.h)
    beside = [b.x + b.w for b in boxes.values() if b.y < bottom and b.y + b.h > top]
    out = max(beside) + 28 + 16 * k
    y0, y1 = source.y + source.h / 2 + 6, target.y + target.h / 2 - 6
    d = (
        f"M{source.x + source.w:.1f},{y0:.1f} L{out - 8:.1f},{y0:.1f} Q{out:.1f},{y0:.1f} {out:.1f},{y0 - 8:.1f} "
        f"L{out:.1f},{y1 + 8:.1f} Q{out:.1f},{y1:.1f} {out - 8:.1f},{y1:.1f} L{target.x + target.w:.1f},{y1:.1f}"
    )
    edge = Edge(d=d, label=label, back=True)
    width = len(label) * CHAR_PX + 10 if label else 0
    if label:
        edge.lx, edge.ly, edge.lw = out, (y0 + y1) / 2, width
    return edge, out + width / 2
