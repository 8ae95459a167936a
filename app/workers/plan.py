"""Budget planner process: plans a training run for each budget the GUI offers, one JSON line each.

Started by the GUI as ``python -m app.workers.plan ...`` (or ``b2p plan-worker ...`` when
frozen), so torch never loads in the GUI for it. It takes the run's configs as the training
worker does (``--student``, ``--train``: JSON of their fields), measures each setting once on
this machine and prints, in the order asked, each budget's plan
(:meth:`ml.training.budget.TrainPlan.to_json`) or ``{"budget_s", "error"}``; an error that is no
budget's (no project, no photos to train on, settings out of range) is one ``{"error"}`` line.
Exit code 0 when every budget has a plan, 1 otherwise, 2 for bad arguments.

    python -m app.workers.plan PROJECT --budget 15m --budget 5m --budget converged
"""

from __future__ import annotations

import argparse
import json
import sys

from app.workers.train import be_nice


def build_parser() -> argparse.ArgumentParser:
    from ml.training.budget import CONVERGED

    p = argparse.ArgumentParser(prog="b2p plan-worker", description=__doc__.splitlines()[0])
    p.add_argument("project", help="project folder")
    p.add_argument("--budget", action="append",
                   help=f"90s, 10m, 1h or {CONVERGED}; repeat it for a plan each, printed in "
                   "order; omitted: until converged")
    p.add_argument("--student", default="{}", help="JSON of StudentConfig fields")
    p.add_argument("--train", default="{}",
                   help="JSON of TrainConfig fields (device, batch size and box loss set what "
                   "a step costs)")
    p.add_argument("--source", default="teacher", help="masks to train on: teacher | reviewed")
    p.add_argument("--nice", type=int, default=0,
                   help="lower this process's CPU priority by N (the GUI starts it with 10)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    be_nice(args.nice)  # a courtesy to the GUI; planning goes on without it
    from ml.training.budget import CONVERGED, BudgetError, parse_budget_choice, plan_budgets

    failed = False
    try:
        from dataclasses import replace

        from ml.project.store import Project
        from ml.student.config import StudentConfig, TrainConfig

        budgets = [parse_budget_choice(b) for b in args.budget or [CONVERGED]]
        project = Project.open(args.project)
        student = replace(StudentConfig.from_dict(json.loads(args.student)),
                          num_classes=project.num_classes)
        cfg = TrainConfig.from_dict(json.loads(args.train))
        for budget_s, p in plan_budgets(project, student, cfg, budgets, args.source):
            if isinstance(p, BudgetError):
                failed = True
                print(json.dumps({"budget_s": budget_s, "error": str(p)}), flush=True)
            else:
                print(p.to_json(), flush=True)  # the GUI shows each as it comes
    except Exception as e:  # one line for the GUI, whatever went wrong
        print(json.dumps({"error": str(e)}), flush=True)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
