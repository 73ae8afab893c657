"""POET planner: energy-optimal rematerialization and paging for training on a board.

See docs/poet.md. Modules: :mod:`.graph` (training graphs and their JSON), :mod:`.training`
(forward network -> training graph), :mod:`.model_graph` (capsule/.tflite -> training graph),
:mod:`.milp` and :mod:`.poet_milp` (the two formulations), :mod:`.heuristics` (warm start and
baselines), :mod:`.schedule` (steps and the schedule JSON), :mod:`.checker` (independent
replay), :mod:`.planner` (the whole job), :mod:`.plot`.
"""
