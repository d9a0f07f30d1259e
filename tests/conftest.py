# --- Triton interpreter (tests/test_triton_*.py) ---------------------------------------------
# Without a GPU, the Triton kernels run on CPU tensors through the interpreter. The variable is
# read when ternhd.kernels is imported, so it is set here, before any test module imports it.
import importlib.util
import os

if "TRITON_INTERPRET" not in os.environ and importlib.util.find_spec("triton") is not None:
    try:
        import torch

        if not torch.cuda.is_available():
            os.environ["TRITON_INTERPRET"] = "1"
    except ImportError:
        pass
