"""The package-dir mapping (software/ -> rowmix, hardware/ sim/ boards/ -> its subpackages) works in
the editable install and in a built wheel."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_editable_install_maps_the_stage_folders():
    import rowmix.boards
    import rowmix.hardware
    import rowmix.sim

    for mod, folder in ((rowmix.hardware, "hardware"), (rowmix.sim, "sim"), (rowmix.boards, "boards")):
        assert Path(mod.__file__).resolve().parent == ROOT / folder


def test_wheel_contains_every_package_and_the_schema(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("rowmix-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("rowmix/__init__.py", "rowmix/cli.py", "rowmix/formats/codes.py", "rowmix/golden/ops.py",
              "rowmix/hardware/__init__.py", "rowmix/sim/__init__.py", "rowmix/boards/__init__.py",
              "rowmix/artifact/manifest.schema.json"):
        assert f in names, f
