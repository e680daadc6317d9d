"""The registry of `diffkit bench`: every workload it runs, in report order. A new workload is
its module here and one line below (see each module's WORKLOAD; the contract is protocol.py)."""

from diffkit.bench.workloads import (
    w1_neuron,
    w2_xor_batched,
    w2_xor_scalar,
    w3_chain,
    w4_logistic,
    w5_forward,
    w5_mlp,
    w6_verdict,
    w7_cases,
)

WORKLOADS = [
    w1_neuron.WORKLOAD,
    w2_xor_scalar.WORKLOAD,
    w2_xor_batched.WORKLOAD,
    w3_chain.WORKLOAD,
    w4_logistic.WORKLOAD,
    w5_mlp.WORKLOAD,
    w5_forward.WORKLOAD,
    w6_verdict.WORKLOAD,
    w7_cases.WORKLOAD,
]
