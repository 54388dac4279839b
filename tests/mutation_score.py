"""The mutation score of `make mutation`: reads `mutmut results --all true` and prints killed / total per module.

A mutant counts as killed when a test failed or timed out on it; one no test reaches counts as survived.
Usage: mutmut results --all true | python tests/mutation_score.py [module ...]  (modules as `storage/registry`).
"""

import sys
from collections import Counter, defaultdict

CAUGHT = {"killed", "timeout", "caught by type check"}
UNCHECKED = {"not checked", "skipped", "check was interrupted by user"}


def module_of(mutant: str) -> str:
    """`deployment_model.storage.registry.xǁRegistryǁload__mutmut_3` -> `storage/registry`."""
    dotted = mutant.split(".x", 1)[0] if ".x" in mutant else mutant.rsplit(".", 1)[0]
    return dotted.removeprefix("deployment_model.").replace(".", "/")


def main(argv: list[str]) -> int:
    wanted = set(argv)
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    for line in sys.stdin:
        name, _, status = line.strip().rpartition(": ")
        if not name:
            continue
        module = module_of(name)
        if (wanted and module not in wanted) or status in UNCHECKED:
            continue
        by_module[module]["killed" if status in CAUGHT else "alive"] += 1
    total = Counter()
    for module in sorted(by_module):
        counts = by_module[module]
        total.update(counts)
        checked = counts["killed"] + counts["alive"]
        print(f"{module:28} {counts['killed']:4} / {checked:4} killed ({100 * counts['killed'] / checked:.0f}%)")
    checked = total["killed"] + total["alive"]
    if not checked:
        print("no mutant checked yet")
        return 1
    print(f"{'total':28} {total['killed']:4} / {checked:4} killed ({100 * total['killed'] / checked:.0f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
