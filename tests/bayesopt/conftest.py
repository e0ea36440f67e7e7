"""BO tests: single-threaded torch.

BoTorch's matrices here are tiny (tens of points), so torch's intra-op threads only
contend with the other pytest worker for the 2 cores: one thread is 3-5x cheaper in
CPU time for the same result.
"""

import torch

torch.set_num_threads(1)
