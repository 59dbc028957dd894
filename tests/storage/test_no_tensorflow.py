"""`storage` and `contracts` import no TensorFlow or Keras, nor does the API's image reading, region
filling and layered files (model/imageio.py, model/regions.py, model/fullsize.py, model/layers.py,
model/layer_files.py): light processes (the API's upload path, the launcher, the CLI's model commands) must not
pay TensorFlow's start-up time and memory for them. Checked in a fresh interpreter, where nothing else has
imported TensorFlow first."""

import os
import subprocess
import sys

from tests.support import REPO_ROOT

HEAVY = ("tensorflow", "keras")
# Imports the named modules one at a time and names the first after which a heavy package is loaded: that
# module (or something it imports) pulled it in.
CHECK = f"""
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
    heavy = [package for package in {HEAVY!r} if package in sys.modules]
    if heavy:
        print(f"importing {{name}} imported {{', '.join(heavy)}}")
        sys.exit(1)
print(f"{{len(sys.argv) - 1}} modules, none imports {{' or '.join({HEAVY!r})}}")
"""


def modules_of(package: str) -> list[str]:
    """Every module of the package, read from its files (importing them here would prove nothing)."""
    names = []
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        parts = path.relative_to(REPO_ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_storage_contracts_and_image_reading_import_no_tensorflow():
    modules = [
        *modules_of("storage"),
        *modules_of("contracts"),
        "model.imageio",
        "model.regions",
        "model.fullsize",
        "model.layers",
        "model.layer_files",
    ]
    assert "storage.serving_policy" in modules and "contracts.settings" in modules, modules
    checked = subprocess.run(
        [sys.executable, "-c", CHECK, *modules],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(modules)} modules" in checked.stdout, checked.stdout


def test_the_check_names_a_module_that_imports_tensorflow():
    """The check itself can fail: a module that imports Keras is named."""
    checked = subprocess.run(
        [sys.executable, "-c", CHECK, "storage.layout", "model.networks"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 1 and "importing model.networks imported" in checked.stdout, (
        checked.stdout + checked.stderr
    )


def test_the_importer_and_the_cli_entry_import_no_tensorflow(tmp_path):
    """The dataset importer (`sketch2color worker --queues datasets`) idles without TensorFlow's memory: its
    task module, the import and XDoG sketches, and the CLI's entry (with `colorize`'s ONNX path) load none."""
    modules = ["model.sketchify", "model.dataset_import", "model.onnx_engine", "worker.imports",
               "worker.celery_app", "worker.tasks", "cli.main", "cli.datasets", "cli.remote"]  # fmt: skip
    environment = {name: value for name, value in os.environ.items() if not name.startswith("S2C_")}
    checked = subprocess.run(
        [sys.executable, "-c", CHECK, *modules],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**environment, "S2C_DATA_DIR": str(tmp_path)},
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(modules)} modules" in checked.stdout, checked.stdout
