"""The package's folders are layers and imports point down only: a module may import its own
layer and the layers below it, never one above (so the training path never reaches the corpus
builders, and file access never reaches models)."""
import ast
import os

import fairseq_signlang

PACKAGE_DIR = os.path.dirname(fairseq_signlang.__file__)
# bottom to top; a module's layer is the longest prefix of its path listed here
LAYERS = [
    "io",
    "data",
    "features",
    "metrics",
    "models",
    "criterions",
    "tasks",
    "viz",
    "corpora.synthetic",
    "corpora",
    "tools",
    "",  # the package's __init__: registration
]


def layer_of(module: str) -> int:
    """Rank of `module` (dotted, relative to the package) in LAYERS."""
    best = None
    for rank, prefix in enumerate(LAYERS):
        if prefix and (module == prefix or module.startswith(prefix + ".")):
            if best is None or len(prefix) > len(LAYERS[best]):
                best = rank
    if best is None:
        assert module == "", f"fairseq_signlang.{module} is in no layer: add its folder to LAYERS"
        return len(LAYERS) - 1
    return best


def package_imports(path: str, module: str):
    """(line, imported module relative to the package) for each import of the package in a file."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    package = module.rsplit(".", 1)[0] if not path.endswith("__init__.py") else module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] if node.module else [".".join(base + [a.name]) for a in node.names]
            elif node.module and (node.module == "fairseq_signlang" or node.module.startswith("fairseq_signlang.")):
                target = node.module[len("fairseq_signlang") + 1:]
                names = [target] if target else [a.name for a in node.names]
            else:
                continue
            for name in names:
                yield node.lineno, name
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "fairseq_signlang" or a.name.startswith("fairseq_signlang."):
                    yield node.lineno, a.name[len("fairseq_signlang") + 1:]  # "" for the package: the top


def all_modules():
    for folder, _, files in os.walk(PACKAGE_DIR):
        for f in sorted(files):
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                rel = os.path.relpath(path, PACKAGE_DIR)[:-3].replace(os.sep, ".")
                yield path, (rel[: -len(".__init__")] if rel.endswith(".__init__") else ("" if rel == "__init__" else rel))


def upward_imports():
    found = []
    for path, module in all_modules():
        own = layer_of(module)
        for lineno, target in package_imports(path, module):
            if layer_of(target) > own:
                found.append(f"{os.path.relpath(path, PACKAGE_DIR)}:{lineno}: {module or '(package)'} [{LAYERS[own] or 'package'}] "
                             f"imports {target} [{LAYERS[layer_of(target)]}]")
    return found


def test_imports_point_down():
    assert upward_imports() == []


def test_every_module_is_in_a_layer():
    for _, module in all_modules():
        layer_of(module)


def test_an_upward_import_is_caught(tmp_path):
    bad = tmp_path / "readers.py"
    bad.write_text("from fairseq_signlang.models.uslnet.joint import UslnetModel\nfrom ..tasks import uslnet_bt\n")
    imports = list(package_imports(str(bad), "io.readers"))
    assert imports == [(1, "models.uslnet.joint"), (2, "tasks")]
    assert all(layer_of(t) > layer_of("io.readers") for _, t in imports)
