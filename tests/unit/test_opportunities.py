"""The opportunity finders: real, mechanical improvements found with ``ast``.

Each finder's patches, applied with the real patcher, give code that still parses and no
longer has the opportunity. When in doubt a finder finds nothing.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from hephaestus.agent.patches import apply_plan, parse_plan
from hephaestus.llm.opportunities import Opportunity, find_opportunities

KINDS = (
    "module_docstring",
    "function_docstring",
    "unused_import",
    "none_comparison",
    "bare_except",
)


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def of_kind(path: str, source: str, kind: str) -> list[Opportunity]:
    return [o for o in find_opportunities(path, source) if o.kind == kind]


def occurrences(text: str, block: str) -> int:
    """How often ``block`` occurs in ``text``, overlapping occurrences included."""
    return sum(text.startswith(block, i) for i in range(len(text)))


def apply(tmp_path: Path, path: str, source: str, opportunity: Opportunity) -> str:
    """Write ``source`` under ``tmp_path``, apply the opportunity's patches, return the result."""
    target = tmp_path / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(source)
    apply_plan(
        parse_plan({"analysis": opportunity.objective, "patches_to_apply": opportunity.patches}),
        tmp_path,
    )
    return target.read_text()


CASES = {
    "module_docstring": src('''
        import os


        def main():
            """Run."""
            return os.getcwd()
    '''),
    "function_docstring": src('''
        """Module."""


        def total_price(items):
            return sum(items)
    '''),
    "unused_import": src('''
        """Module."""

        import json
        import os


        def here():
            """Where."""
            return os.getcwd()
    '''),
    "none_comparison": src('''
        """Module."""


        def check(value):
            """Check."""
            if value == None:
                return "missing"
            return "ok"
    '''),
    "bare_except": src('''
        """Module."""


        def parse(text):
            """Parse."""
            try:
                return int(text)
            except:
                return None
    '''),
}


def test_every_kind_has_a_case():
    assert set(CASES) == set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_finder_finds_its_kind_and_its_patch_removes_it(tmp_path, kind):
    source = CASES[kind]
    [opportunity] = of_kind("pkg/mod.py", source, kind)

    after = apply(tmp_path, "pkg/mod.py", source, opportunity)

    ast.parse(after)
    assert after != source
    assert of_kind("pkg/mod.py", after, kind) == []


@pytest.mark.parametrize("kind", KINDS)
def test_opportunity_describes_itself(kind):
    [opportunity] = of_kind("pkg/mod.py", CASES[kind], kind)

    assert "pkg/mod.py" in opportunity.objective
    assert opportunity.file_path == "pkg/mod.py"
    assert opportunity.line >= 1
    assert opportunity.key == f"{kind}:pkg/mod.py:{opportunity.symbol}"
    assert all(p["file_path"] == "pkg/mod.py" for p in opportunity.patches)


def test_opportunities_come_in_line_order():
    source = src("""
        import json


        def a(x):
            try:
                return x == None
            except:
                pass
    """)

    found = find_opportunities("pkg/mod.py", source)

    assert {o.kind for o in found} == set(KINDS)
    assert [o.line for o in found] == sorted(o.line for o in found)


def test_finding_is_deterministic():
    source = CASES["bare_except"] + CASES["none_comparison"].replace('"""Module."""\n', "")

    assert find_opportunities("m.py", source) == find_opportunities("m.py", source)


# -- what each fix looks like -----------------------------------------------------------------
def test_module_docstring_goes_before_the_first_statement_and_after_comments(tmp_path):
    source = src('''
        #!/usr/bin/env python
        # Copyright notice

        @decorator
        def run():
            """Run."""
    ''')
    [opportunity] = of_kind("tools/run.py", source, "module_docstring")

    after = apply(tmp_path, "tools/run.py", source, opportunity)

    assert ast.get_docstring(ast.parse(after))
    assert after.startswith('#!/usr/bin/env python\n# Copyright notice\n\n"""')
    assert "@decorator\ndef run():" in after


def test_module_docstring_names_public_definitions():
    source = "def load():\n    pass\n\n\nclass Store:\n    pass\n\n\ndef _hidden():\n    pass\n"

    [opportunity] = of_kind("pkg/store.py", source, "module_docstring")

    content = opportunity.patches[0]["content"]
    assert "load" in content and "Store" in content and "_hidden" not in content


def test_module_docstring_of_a_package_init(tmp_path):
    source = "from pkg.store import Store\n"
    [opportunity] = of_kind("pkg/__init__.py", source, "module_docstring")

    after = apply(tmp_path, "pkg/__init__.py", source, opportunity)

    assert "pkg" in ast.get_docstring(ast.parse(after)).lower()


def test_method_docstring_is_indented_like_its_body(tmp_path):
    source = src('''
        """Module."""


        class Store:
            """Store."""

            async def fetch_all(self):
                return []
    ''')
    [opportunity] = of_kind("pkg/mod.py", source, "function_docstring")

    after = apply(tmp_path, "pkg/mod.py", source, opportunity)

    assert opportunity.symbol == "Store.fetch_all"
    method = ast.parse(after).body[1].body[1]
    assert ast.get_docstring(method)


def test_partial_from_import_keeps_the_used_name(tmp_path):
    source = src('''
        """Module."""

        from collections import Counter, OrderedDict, deque


        def count(items):
            """Count."""
            return Counter(items), deque(items)
    ''')
    [opportunity] = of_kind("pkg/mod.py", source, "unused_import")

    after = apply(tmp_path, "pkg/mod.py", source, opportunity)

    assert opportunity.symbol == "OrderedDict"
    assert opportunity.patches[0]["operation"] == "REPLACE"
    tree = ast.parse(after)
    [node] = [n for n in tree.body if isinstance(n, ast.ImportFrom)]
    assert [a.name for a in node.names] == ["Counter", "deque"]
    assert of_kind("pkg/mod.py", after, "unused_import") == []


def test_partial_import_with_aliases_keeps_the_used_alias(tmp_path):
    source = '"""M."""\nimport os.path as osp, sys as system\nprint(system.argv)\n'
    [opportunity] = of_kind("pkg/mod.py", source, "unused_import")

    after = apply(tmp_path, "pkg/mod.py", source, opportunity)

    assert opportunity.symbol == "osp"
    assert "import sys as system\n" in after
    assert "osp" not in after


def test_multi_line_import_is_removed_whole(tmp_path):
    source = '"""M."""\nfrom os import (\n    getcwd,\n    sep,\n)\n\nx = 1\n'
    [opportunity] = of_kind("pkg/mod.py", source, "unused_import")

    after = apply(tmp_path, "pkg/mod.py", source, opportunity)

    assert after == '"""M."""\n\nx = 1\n'


@pytest.mark.parametrize(
    ("line", "fixed"),
    [
        ("    ok = value == None\n", "    ok = value is None\n"),
        ("    ok = value != None\n", "    ok = value is not None\n"),
        ("    if value == None: return 1\n", "    if value is None: return 1\n"),
        (
            "    ok = flag and value.x() == None  # why\n",
            "    ok = flag and value.x() is None  # why\n",
        ),
        (
            "    label = 'café' if vålue == None else 'x'\n",
            "    label = 'café' if vålue is None else 'x'\n",
        ),
    ],
)
def test_none_comparison_rewrites_only_the_comparison(tmp_path, line, fixed):
    source = f'"""M."""\n\n\ndef f(value, flag=1, vålue=2):\n    """F."""\n{line}    return 0\n'
    [opportunity] = of_kind("pkg/mod.py", source, "none_comparison")

    after = apply(tmp_path, "pkg/mod.py", source, opportunity)

    assert after == source.replace(line, fixed)


def test_two_none_comparisons_on_one_line_are_fixed_one_at_a_time(tmp_path):
    source = '"""M."""\nif a == None or b != None:\n    pass\n'

    first, second = of_kind("pkg/mod.py", source, "none_comparison")
    after = apply(tmp_path, "pkg/mod.py", source, first)
    [rest] = of_kind("pkg/mod.py", after, "none_comparison")
    after = apply(tmp_path, "pkg/mod.py", after, rest)

    assert second.line == first.line
    assert "if a is None or b is not None:" in after


def test_bare_except_keeps_the_comment_and_body(tmp_path):
    source = '"""M."""\ntry:\n    x = 1\nexcept:  # keep going\n    x = 2\n'
    [opportunity] = of_kind("pkg/mod.py", source, "bare_except")

    after = apply(tmp_path, "pkg/mod.py", source, opportunity)

    assert after == source.replace("except:", "except Exception:")


def test_ambiguous_bare_except_line_gets_a_widened_unique_block(tmp_path):
    source = src('''
        """Module."""


        def first(x):
            """First."""
            try:
                return int(x)
            except:
                return 0


        def second(x):
            """Second."""
            try:
                return int(x)
            except:
                return 0
    ''')
    found = of_kind("pkg/mod.py", source, "bare_except")

    assert len(found) == 2
    for i, opportunity in enumerate(found):
        block = opportunity.patches[0]["block_to_replace"]
        assert block != "    except:\n"
        assert occurrences(source, block) == 1

        after = apply(tmp_path / str(i), "pkg/mod.py", source, opportunity)

        ast.parse(after)
        assert after.count("except Exception:") == 1
        assert len(of_kind("pkg/mod.py", after, "bare_except")) == 1


def test_ambiguous_none_comparison_line_gets_a_widened_unique_block():
    source = '"""M."""\nif x == None:\n    y = 1\nif x == None:\n    y = 2\n'

    for opportunity in of_kind("pkg/mod.py", source, "none_comparison"):
        assert occurrences(source, opportunity.patches[0]["block_to_replace"]) == 1


# -- conservative: when in doubt, nothing -----------------------------------------------------
@pytest.mark.parametrize("path", ["pkg/mod.pyi", "README.md", "setup.cfg", "pkg/mod.pyc"])
def test_non_python_files_are_left_alone(path):
    assert find_opportunities(path, CASES["bare_except"]) == []


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("def f(:\n    pass\n", id="syntax-error"),
        pytest.param("", id="empty"),
        pytest.param("# only a comment\n", id="only-comments"),
    ],
)
def test_unparsable_or_empty_source_finds_nothing(source):
    assert find_opportunities("pkg/mod.py", source) == []


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        pytest.param('"""Doc."""\nx = 1\n', "module_docstring", id="module-has-docstring"),
        pytest.param(
            '"""M."""\nimport os\nNAME = "os"\n', "unused_import", id="name-used-in-a-string"
        ),
        pytest.param(
            '"""M."""\nfrom pkg import api\n__all__ = ["api"]\n', "unused_import", id="name-in-all"
        ),
        pytest.param(
            '"""M."""\nfrom __future__ import annotations\n', "unused_import", id="future-import"
        ),
        pytest.param('"""M."""\nfrom os.path import *\n', "unused_import", id="star-import"),
        pytest.param(
            '"""M."""\ntry:\n    import ujson\nexcept ImportError:\n    ujson = None\n',
            "unused_import",
            id="import-inside-try",
        ),
        pytest.param(
            '"""M."""\nimport os; print(1)\n',
            "unused_import",
            id="import-sharing-its-line-with-code",
        ),
        pytest.param(
            '"""M."""\nimport os  # noqa: F401\n', "unused_import", id="import-with-a-comment"
        ),
        pytest.param(
            '"""M."""\nimport os.path\nos.sep\n',
            "unused_import",
            id="dotted-import-used-by-its-root",
        ),
        pytest.param('"""M."""\ndef f(): return 1\n', "function_docstring", id="one-line-def"),
        pytest.param(
            '"""M."""\ndef _helper(x):\n    return x\n', "function_docstring", id="private-function"
        ),
        pytest.param(
            '"""M."""\ndef __init__(x):\n    return x\n', "function_docstring", id="dunder-function"
        ),
        pytest.param(
            '"""M."""\ndef f(x):\n    """Has one."""\n    return x\n',
            "function_docstring",
            id="function-has-docstring",
        ),
        pytest.param(
            '"""M."""\ndef f(\n    x): return x\n',
            "function_docstring",
            id="body-on-the-signature-line",
        ),
        pytest.param(
            '"""M."""\ndef outer():\n    """O."""\n    def inner():\n        pass\n',
            "function_docstring",
            id="nested-function",
        ),
        pytest.param(
            '"""M."""\nok = (value ==\n      None)\n', "none_comparison", id="multi-line-comparison"
        ),
        pytest.param('"""M."""\nok = None == value\n', "none_comparison", id="none-on-the-left"),
        pytest.param('"""M."""\nok = a == b == None\n', "none_comparison", id="chained"),
        pytest.param('"""M."""\nok = value is None\n', "none_comparison", id="already-is"),
        pytest.param(
            '"""M."""\nok = value == (None)\n', "none_comparison", id="parenthesised-none"
        ),
        pytest.param(
            '"""M."""\ntry:\n    pass\nexcept ValueError:\n    pass\n',
            "bare_except",
            id="typed-except",
        ),
        pytest.param(
            '"""M."""\ntry:\n    pass\nexcept \\\n:\n    pass\n',
            "bare_except",
            id="except-split-by-a-backslash",
        ),
    ],
)
def test_conservative_cases(source, kind):
    assert of_kind("pkg/mod.py", source, kind) == []


def test_unused_imports_of_a_package_init_are_re_exports():
    assert (
        of_kind("pkg/__init__.py", '"""Pkg."""\nfrom pkg.mod import thing\n', "unused_import") == []
    )


def test_bare_except_on_one_line_is_still_found(tmp_path):
    source = '"""M."""\ntry: pass\nexcept: pass\n'
    [opportunity] = of_kind("pkg/mod.py", source, "bare_except")

    after = apply(tmp_path, "pkg/mod.py", source, opportunity)

    assert after == '"""M."""\ntry: pass\nexcept Exception: pass\n'
