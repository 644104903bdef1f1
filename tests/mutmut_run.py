"""`nox -s mutate` runs mutmut through this: mutmut 3, taught to mutate the registered checks.

mutmut 3 leaves decorated functions alone (a copy of one would run its decorator
again), and every check of grader/rubric.py is registered by ``@check("name")``.
For those functions only, this lets mutmut in: the trampoline keeps the
decorator (it is what the registry holds), the original and its mutants lose it
(they must not register twice). It patches the mutmut pinned in
requirements/mutate.txt; configuration is ``[tool.mutmut]`` in pyproject.toml.
Not a test module (pytest collects ``test_*.py`` only).
"""

from __future__ import annotations

import sys

import libcst as cst
from libcst.metadata import PositionProvider
from mutmut.mutation import file_mutation as fm


def registered(fn: cst.FunctionDef) -> bool:
    return bool(fn.decorators) and all(
        isinstance(d.decorator, cst.Call) and isinstance(d.decorator.func, cst.Name)
        and d.decorator.func.value == "check" for d in fn.decorators)


_skip = fm.MutationVisitor._skip_node_and_children
_arrange = fm.function_trampoline_arrangement


def _skip_node(self, node):  # type: ignore[no-untyped-def]
    if isinstance(node, cst.FunctionDef) and registered(node):
        pos = self.get_metadata(PositionProvider, node, None)
        if pos and pos.start.line in self._ignored_node_lines:
            self.ignored_functions.add(node.name.value)
            return True
        return False
    return _skip(self, node)


def _arrangement(function, mutants, class_name):  # type: ignore[no-untyped-def]
    decls, nodes, assigns, names = _arrange(function, mutants, class_name)
    if registered(function):
        nodes = [nodes[0], *(n.with_changes(decorators=[]) for n in nodes[1:])]
    return decls, nodes, assigns, names


if __name__ == "__main__":
    fm.MutationVisitor._skip_node_and_children = _skip_node
    fm.function_trampoline_arrangement = _arrangement
    from mutmut.__main__ import cli

    sys.argv[0] = "mutmut"
    cli()
