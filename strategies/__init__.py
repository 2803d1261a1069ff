"""Built-in continual-learning strategies, one module each.

``BUILTINS`` is the table the strategy registry (``unicon_bench.registry``) reads: name ->
``"module:Class"``, imported only when the strategy is asked for. A new built-in strategy is a
module here whose class carries ``@register_strategy("name")``, plus its line in this table
(``tests/test_registry.py`` checks that the two agree).

Avalanche pulls in qpsolvers, which warns at import time that no QP solver is installed (only GEM
needs one); that warning would otherwise precede every strategy's output and error line.
"""

import warnings

warnings.filterwarnings("ignore", message="no QP solver found", category=UserWarning)

BUILTINS = {
    "agem": "unicon_bench.strategies.agem:AGEM",
    "der": "unicon_bench.strategies.der:DER",
    "ewc": "unicon_bench.strategies.ewc:EWC",
    "inflora": "unicon_bench.strategies.inflora:InfLoRA",
    "joint": "unicon_bench.strategies.joint:Joint",
    "l2p": "unicon_bench.strategies.l2p:L2P",
    "lwf": "unicon_bench.strategies.lwf:LwF",
    "mas": "unicon_bench.strategies.mas:MAS",
    "medcoss": "unicon_bench.strategies.medcoss:MedCoSS",
    "naive": "unicon_bench.strategies.naive:Naive",
    "packnet": "unicon_bench.strategies.packnet:PackNet",
    "replay": "unicon_bench.strategies.replay:Replay",
    "rwalk": "unicon_bench.strategies.rwalk:RWalk",
    "seq_lora": "unicon_bench.strategies.seq_lora:SeqLoRA",
    "si": "unicon_bench.strategies.si:SI",
    "specialized": "unicon_bench.strategies.specialized:Specialized",
    "unicon": "unicon_bench.strategies.unicon:Unicon",
}
