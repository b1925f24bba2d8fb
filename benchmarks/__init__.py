"""Load benchmark for `restpredict serve`, measured against two baseline servers.

Run it as ``python -m benchmarks`` (see ``benchmarks/README.md``). The machine is small and shared,
so every number is reported next to baselines measured in the same run, and the targets are ratios.

Module map (imports point down the list):

- ``cli``: argument parsing and exit codes; calls ``runner.run``, or redraws a run's files.
- ``chart``: a run's chart (PNG, matplotlib from the ``bench`` extra), drawn from its JSON.
- ``results``: a run's JSON document and its files (JSON and report, named by the UTC start).
- ``report``: a run's Markdown report, rendered from its JSON.
- ``table``: the results as text tables for the terminal.
- ``runner``: starts each server, gates it for correctness, loads it with wrk, stops it.
- ``goals``: the ratio targets behind ``--check-targets``.
- ``ratios``: each cell's ratio to the ceiling and naive baselines.
- ``server``: one server process: launch pinned to a core, readiness, peak RSS, stop.
- ``gate``: compares a server's predictions with the model's local ``predict``.
- ``wrk``: one wrk run, pinned to the other core, read back through ``wrk_report.lua``.
- ``targets``: the table of servers under test. ``payloads``, ``models``: what is sent and served.
- ``types``: the shapes passed between modules. ``baselines``: the ceiling and naive servers.
"""
