import subprocess
import sys


def test_import_is_cheap():
    heavy = ["torch", "monai", "sklearn", "lifelines", "torchsurv"]
    code = (
        "import sys, unicon_bench.metrics as m; "
        "assert callable(m.dice) and callable(m.roc_auc) and callable(m.c_index); "
        "assert callable(m.continual.summarize); "
        f"print([k for k in {heavy!r} if k in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
