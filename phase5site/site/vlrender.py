"""vl-convert work (the offline chart bundle, the archive SVGs) in a side process.

Why a process: vl-convert runs Vega in an embedded JavaScript engine and holds Python's GIL
while it works, so a thread cannot overlap it with page writing or ``mkdocs build``. In a
cold build the bundle and the SVGs were a third of the time (profiled on a 576k-request run:
bundle 1.2 s and SVGs 0.8 s of CPU out of 5.3 s), and nothing else waits for the SVGs. So
the builder starts this file as a script (``python vlrender.py``: it imports only the
standard library and vl_convert, not phase5site, so it starts in a fraction of a second),
sends it jobs as JSON lines on stdin and goes on with its own work; the bundle is awaited
before ``mkdocs build`` (which copies it), the SVGs only at the end of the build.

Job lines: ``{"kind": "bundle", "path", "header", "vl_version", "also"}`` (``also``: a
second copy, for the per-user cache) and ``{"kind": "svg",
"path", "spec", "vl_version"}``; one answer line each: ``{"path", "ok": true}`` or
``{"path", "ok": false, "error"}``. Files are written to a temporary name and renamed, so a
killed process never leaves a half file that looks current.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def wrap_bundle(header: str, body: str) -> str:
    """The bundle wrapped in an IIFE so its thousands of top-level names stay private.

    Example: ``wrap_bundle("/* v */\\n", "var x;")`` -> ``'/* v */\\n(function () {\\nvar x;\\n})();\\n'``.
    """
    return header + "(function () {\n" + body + "\n})();\n"


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Do one job; an error is an answer, never an exception (one bad chart must not stop
    the others)."""
    import vl_convert

    path = Path(job["path"])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if job["kind"] == "bundle":
            body = vl_convert.javascript_bundle(vl_version=job.get("vl_version"))
            text = wrap_bundle(job["header"], body)
            write_atomically(path, text)
            if job.get("also"):  # the per-user cache; a failure there costs only time later
                try:
                    write_atomically(Path(job["also"]), text)
                except OSError:
                    pass
        else:
            write_atomically(path, vl_convert.vegalite_to_svg(job["spec"], vl_version=job.get("vl_version")))
    except Exception as error:  # noqa: BLE001 - reported to the parent, which decides
        return {"path": str(path), "ok": False, "error": f"{type(error).__name__}: {error}"}
    return {"path": str(path), "ok": True}


def main() -> None:
    for line in sys.stdin:
        if line.strip():
            sys.stdout.write(json.dumps(run_job(json.loads(line))) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
