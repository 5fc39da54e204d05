#!/usr/bin/python3
"""include_graph.py: no include cycles between the files of lib/ (and daemon/).

    tests/static/include_graph.py [--daemon] [SOURCE-ROOT]

Builds a graph whose nodes are files, x.c and x.h counting as one node "x"
(lib/spool/env, daemon/shared/queue, ...).  x depends on y when x.c or
x.h includes y.h.  A header without a .c of its own
(lib/spool/spool_int.h, lib/sasl/mech.h) is shared by several files and
is no node: each function it declares belongs to the file whose .c
defines it, so a file that includes such a header and calls one of its
functions depends on that function's file, and on what the shared header
includes itself.  A cycle in that graph is a pair (or ring) of files that
cannot be understood, tested or moved one without the other.

Checks lib/ only, or lib/ and daemon/ with --daemon.  With --daemon it
also keeps daemon/ split by program: a file in daemon/shared/ includes
nothing from a program's folder, and a file in a program's folder
(daemon/posternd/, ...) nothing from another program's; lib/ includes
nothing from daemon/.  Prints every cycle and breach found and exits 1
if there is one; 0 otherwise.
"""

import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
# A declaration in a header: an identifier followed by "(" on a line that
# is not a macro, the way this code base writes prototypes.
PROTO = re.compile(r'^[^#\s/*][^;{}]*?\b([A-Za-z_]\w*)\s*\(', re.M)
# A definition in a .c: the function name at column 0 after the type line.
DEFN = re.compile(r'^([A-Za-z_]\w*)\(', re.M)
COMMENT = re.compile(r'/\*.*?\*/|//[^\n]*', re.S)


def strip_comments(text):
    return COMMENT.sub(' ', text)


def read(path):
    with open(path, encoding='utf-8', errors='replace') as f:
        return f.read()


def collect(root, dirs):
    """Maps node -> list of its files (paths relative to root)."""
    nodes = {}
    for d in dirs:
        top = os.path.join(root, d)
        for base, _, files in os.walk(top):
            for name in sorted(files):
                stem, ext = os.path.splitext(name)
                if ext not in ('.c', '.h'):
                    continue
                rel = os.path.relpath(os.path.join(base, name), root)
                node = os.path.splitext(rel)[0]
                nodes.setdefault(node, []).append(rel)
    return nodes


def resolve(root, src, inc, nodes):
    """The node 'inc' (included by file 'src') names, or None."""
    for cand in (os.path.join(os.path.dirname(src), inc),
                 os.path.join('lib', inc), os.path.join('daemon', inc),
                 inc):
        cand = os.path.normpath(cand)
        node = os.path.splitext(cand)[0]
        if node in nodes and cand in nodes[node]:
            return node
    return None


def build(root, dirs):
    nodes = collect(root, dirs)
    texts = {f: strip_comments(read(os.path.join(root, f)))
             for files in nodes.values() for f in files}

    # Who defines each function.
    definer = {}
    for node, files in nodes.items():
        for f in files:
            if f.endswith('.c'):
                for name in DEFN.findall(texts[f]):
                    definer.setdefault(name, node)

    # Shared headers: what each declares, by defining file.
    shared = {}
    for node, files in nodes.items():
        if node + '.c' in files:
            continue
        for f in files:
            decl = set(PROTO.findall(texts[f]))
            shared[node] = {n: definer[n] for n in decl
                            if n in definer and definer[n] != node}

    # What including a file brings: its own node, or for a shared header
    # the nodes of what it includes in turn (it is text pasted in).
    def brought(dep, seen):
        if dep not in shared:
            return {dep}
        if dep in seen:
            return set()
        seen.add(dep)
        out = set()
        for f in nodes[dep]:
            for inc in INCLUDE.findall(texts[f]):
                d = resolve(root, f, inc, nodes)
                if d is not None:
                    out |= brought(d, seen)
        return out

    graph = {node: set() for node in nodes if node not in shared}
    for node in graph:
        for f in nodes[node]:
            for inc in INCLUDE.findall(texts[f]):
                dep = resolve(root, f, inc, nodes)
                if dep is None:
                    continue
                graph[node] |= brought(dep, set())
                # A shared header's functions: their files, if used.
                for name, owner in shared.get(dep, {}).items():
                    if re.search(r'\b%s\b' % re.escape(name), texts[f]):
                        graph[node].add(owner)
        graph[node].discard(node)
    return graph


def folder_breaches(root, dirs):
    """The includes that cross from one program's folder to another's."""
    nodes = collect(root, dirs)
    out = []
    for node, files in sorted(nodes.items()):
        parts = node.split(os.sep)
        for f in files:
            text = strip_comments(read(os.path.join(root, f)))
            for inc in INCLUDE.findall(text):
                dep = resolve(root, f, inc, nodes)
                if dep is None:
                    continue
                to = dep.split(os.sep)
                if to[0] != 'daemon':
                    continue
                if parts[0] == 'lib':
                    out.append('%s includes "%s" (lib/ never uses daemon/)'
                               % (f, inc))
                elif to[1] != 'shared' and to[1] != parts[1]:
                    out.append('%s includes "%s" from daemon/%s/ (only its '
                               'own folder and daemon/shared/)'
                               % (f, inc, to[1]))
    return out


def cycles(graph):
    """The strongly connected components with more than one node."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def ring(graph, comp):
    """One cycle through the first node of 'comp', as a path."""
    start = comp[0]
    members = set(comp)
    prev = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v]):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w in members and w not in prev:
                prev[w] = v
                queue.append(w)
    return comp


def main(argv):
    args, opts = [], set()
    for a in argv[1:]:
        if a == '--daemon':
            opts.add(a)
        elif a.startswith('-'):
            print(__doc__.strip(), file=sys.stderr)
            return 2
        else:
            args.append(a)
    root = args[0] if args else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), '..', '..')
    dirs = ['lib'] + (['daemon'] if '--daemon' in opts else [])
    graph = build(root, dirs)
    found = cycles(graph)
    status = 0
    for comp in found:
        print('include cycle: ' + ' -> '.join(ring(graph, comp)) +
              ('' if len(comp) < 3 else
               '  (files in the loop: ' + ', '.join(comp) + ')'))
        status = 1
    if '--daemon' in opts:
        for breach in folder_breaches(root, dirs):
            print('folder rule: ' + breach)
            status = 1
    if status == 0:
        print('include graph of %s: %d files, no cycles' %
              (' and '.join(d + '/' for d in dirs), len(graph)))
    return status


if __name__ == '__main__':
    sys.exit(main(sys.argv))
