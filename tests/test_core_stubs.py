"""python/ternhd/_core.pyi matches the compiled module: the same public names, and for every
function and PlanesIndex method the same argument names in the same order (each overload)."""
import ast
import pathlib
import re

import pytest

import ternhd
from ternhd import _core

STUB = pathlib.Path(ternhd.__file__).with_name("_core.pyi")
# Attributes every pybind11 enum / class carries that the stub does not repeat.
ENUM_EXTRAS = {"name", "value", "__init__"}


def _public(names):
    return {n for n in names if not n.startswith("_")} | ({"__version__"} & set(names))


def _stub_tree():
    assert STUB.is_file(), f"{STUB} is not installed next to the extension"
    return ast.parse(STUB.read_text())


def _stub_signatures(body):
    """{name: [argument-name lists, one per overload]} of the functions in a stub body."""
    sigs = {}
    for node in body:
        if isinstance(node, ast.FunctionDef) and not any(
                isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list):
            args = [a.arg for a in node.args.posonlyargs + node.args.args if a.arg != "self"]
            sigs.setdefault(node.name, []).append(args)
    return sigs


def _doc_signatures(obj, name):
    """Argument-name lists from pybind11's docstring signatures (one per overload)."""
    doc = obj.__doc__ or ""
    sigs = []
    for m in re.finditer(rf"^(?:\d+\. )?{re.escape(name)}\((.*)\) ->", doc, re.M):
        args = []
        depth, cur = 0, ""
        for ch in m.group(1) + ",":
            if ch in "([":
                depth += 1
            elif ch in ")]":
                depth -= 1
            if ch == "," and depth == 0:
                if cur.strip():
                    args.append(cur.strip().split(":")[0].strip())
                cur = ""
            else:
                cur += ch
        sigs.append([a for a in args if a != "self"])
    return sigs


def _stub_names(tree):
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_stub_and_module_have_the_same_public_names():
    module = _public(dir(_core))
    stub = _public(_stub_names(_stub_tree()))
    assert module - stub == set(), f"in _core but not in _core.pyi: {sorted(module - stub)}"
    assert stub - module == set(), f"in _core.pyi but not in _core: {sorted(stub - module)}"


def test_function_arguments_match():
    tree = _stub_tree()
    for name, stub_sigs in _stub_signatures(tree.body).items():
        doc_sigs = _doc_signatures(getattr(_core, name), name)
        assert doc_sigs, f"{name}: no signature in its docstring"
        assert sorted(stub_sigs) == sorted(doc_sigs), f"{name}: stub {stub_sigs} != module {doc_sigs}"


@pytest.mark.parametrize("cls", ["PlanesIndex", "ThresholdMode"])
def test_class_members_match(cls):
    node = next(n for n in _stub_tree().body if isinstance(n, ast.ClassDef) and n.name == cls)
    members = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
    members |= {n.target.id for n in node.body if isinstance(n, ast.AnnAssign)}
    members |= {t.id for n in node.body if isinstance(n, ast.Assign) for t in n.targets}
    obj = getattr(_core, cls)
    module = {n for n in dir(obj) if not n.startswith("_")} | {"__init__"}
    extras = ENUM_EXTRAS if cls == "ThresholdMode" else {"__init__"}
    assert module - members - extras == set(), f"{cls}: not in the stub: {sorted(module - members - extras)}"
    assert members - module - extras == set(), f"{cls}: not in the module: {sorted(members - module - extras)}"
    if cls == "PlanesIndex":
        for name, stub_sigs in _stub_signatures(node.body).items():
            doc_sigs = _doc_signatures(getattr(obj, name), name)
            assert sorted(stub_sigs) == sorted(doc_sigs), f"{cls}.{name}: stub {stub_sigs} != module {doc_sigs}"


def test_threshold_mode_values():
    assert [m.name for m in _core.ThresholdMode.__members__.values()] == ["std", "fixed", "sparsity"]
