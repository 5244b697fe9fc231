"""The flow's self-contained HTML report (jinja2 template, plots inlined as PNG)."""

from __future__ import annotations

import base64
import os
from importlib import resources
from pathlib import Path

import jinja2

from . import plots


def write_report(summary: dict, path: str | Path) -> Path:
    env = jinja2.Environment(autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    template = env.from_string(resources.files(__package__).joinpath("report.html.j2").read_text())
    layers = summary["layers"]
    b64 = lambda png: base64.b64encode(png).decode()  # noqa: E731
    figures = {
        "accuracy": b64(plots.accuracy_bars(summary["accuracy"])),
        "mix": b64(plots.scheme_mix(layers)),
        "cycles": b64(plots.cycles_per_layer(layers)),
        "utilisation": b64(plots.utilisation(layers)),
    }
    html = template.render(s=summary, plots=figures)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(html)
    os.replace(tmp, path)
    return path
