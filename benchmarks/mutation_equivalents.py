"""Equivalent mutants of the core modules: changes no input can tell from the original.

`benchmarks/mutation.py` sets these apart from the survivors when it scores a module. Each
entry names the module, the function (``Class.method`` or ``function``), the exact line(s) the
mutant removes and adds (stripped, as in ``mutmut show``), and why no test can kill it. An
entry that no longer matches a mutant (the line was edited) simply stops applying, and the
mutant counts as a survivor again until it is killed or re-argued here.
"""

from __future__ import annotations

EQUIVALENT: list[dict[str, str]] = []
