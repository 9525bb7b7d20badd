"""The child processes' limits hold: a student's code never runs in the grader's process, and a
spin, an exit, or an allocation over the limit costs only the tests it reaches."""

from __future__ import annotations

import os
import sys
import time

from grade_helpers import failed, plant

from chainrule.grade import Limits, grade


def test_student_code_runs_in_a_child_process(tmp_path):
    marker = tmp_path / "pid.txt"
    folder = plant(
        tmp_path,
        "uva2018",
        "modules.py",
        "import numpy as np\n",
        f"import numpy as np\nimport os\nopen({str(marker)!r}, 'w').write(str(os.getpid()))\n",
    )
    report = grade(folder, "uva2018", limits=Limits(time_limit=3, memory_mb=600))
    assert report.score == report.max_score
    assert int(marker.read_text()) != os.getpid()
    assert not any(name.startswith("student_") for name in sys.modules)
    assert not (folder / "__pycache__").exists()


def test_a_spinning_method_is_stopped_and_the_next_class_is_graded(tmp_path):
    folder = plant(
        tmp_path,
        "uva2018",
        "modules.py",
        "        self.x = x\n        out = np.maximum(x, 0)",
        "        while True:\n            pass",
    )
    t0 = time.process_time()
    report = grade(folder, "uva2018", limits=Limits(time_limit=1, memory_mb=600))
    got = failed(report)
    assert set(got) == {
        t.name for t in report.tests if t.unit == "ReLUModule" and "derivative" not in t.name
    } | {"ReLUModule.backward: derivative at 0"}
    first = got["ReLUModule.forward: matches the reference"]
    assert first in ("timed out after 1 s", "used more than 1 s of CPU"), first
    assert all(t.ok for t in report.tests if t.unit != "ReLUModule")  # graded in a fresh child
    assert time.process_time() - t0 < 5  # the spinning happened elsewhere


def test_memory_limit_holds(tmp_path):
    # 1 GiB of zeros costs nothing without a limit (pages are mapped lazily); over 600 MiB it fails
    folder = plant(
        tmp_path,
        "uva2018",
        "modules.py",
        "        self.x = x\n        out = np.maximum(x, 0)",
        "        self.x = x\n        out = np.maximum(x, 0) + np.zeros((1 << 27,))[:1]",
    )
    report = grade(folder, "uva2018", limits=Limits(time_limit=3, memory_mb=600))
    msg = failed(report)["ReLUModule.forward: matches the reference"]
    assert msg.startswith("ran out of memory") and "modules.py line" in msg
    roomy = grade(folder, "uva2018", limits=Limits(time_limit=3, memory_mb=2048))
    assert "ReLUModule.forward: matches the reference" not in failed(roomy)


def test_exit_in_a_method_and_sys_exit_at_import(tmp_path):
    folder = plant(
        tmp_path,
        "uva2018",
        "modules.py",
        "        dx = dout * (self.x > 0)",
        "        import os\n        os._exit(7)",
    )
    report = grade(folder, "uva2018", limits=Limits(time_limit=3, memory_mb=600))
    got = failed(report)
    assert got["ReLUModule.backward: matches the reference"] == "exited with status 7"
    assert {t.unit for t in report.tests if not t.ok} == {"ReLUModule"}
    assert all(t.ok for t in report.tests if t.name.startswith("ReLUModule.forward"))

    other = plant(
        tmp_path, "uva2018", "modules.py", "import numpy as np\n", "import sys\nsys.exit(2)\n", name="s2"
    )
    report = grade(other, "uva2018", limits=Limits(time_limit=3, memory_mb=600))
    assert report.score == 0
    assert {t.message for t in report.tests} == {
        "import of modules.py failed: called sys.exit(2) (modules.py line 5, in <module>)"
    }
