"""`keepwell`, the command line: the only package that imports all the others.

`main` is the console entry point (`keepwell = "cli:main"`, and `python -m cli`): it switches
usage telemetry off before the application, and with it MLflow or BentoML, is imported.
"""

from __future__ import annotations

from keepwell.privacy import disable_telemetry


def main() -> None:
    disable_telemetry()
    from cli.app import app  # after the switches: the commands import MLflow and BentoML

    app()
