"""Built-in continual-learning strategies, one module each.

Avalanche pulls in qpsolvers, which warns at import time that no QP solver is installed (only GEM
needs one); that warning would otherwise precede every strategy's output and error line.
"""

import warnings

warnings.filterwarnings("ignore", message="no QP solver found", category=UserWarning)
