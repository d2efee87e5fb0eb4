"""scorew2: exact, vectorised implementation of Kwon, Fan & Lee (NeurIPS 2022).

Score-based generative modeling secretly minimizes the Wasserstein distance:
W2(p0, q0) <= sqrt(2 sum_i b_i I_i^2) sqrt(J_DSM) + I_T W2(p_T, q_T)  (Corollary 1).
"""

import os

# POT imports torch as a backend unless told not to (seconds per pipeline job, see
# benchmarks/README.md); scorew2 hands POT numpy arrays only: the torch backend is never needed.
os.environ.setdefault("POT_BACKEND_DISABLE_PYTORCH", "1")

__all__ = ["__version__"]

__version__ = "0.1.0"
