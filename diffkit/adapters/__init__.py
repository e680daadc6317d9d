"""Adapters that let `diffkit conformance` drive an AD engine: diffkit's own, PyTorch and JAX
(float64; each needs its engine installed) and micrograd. `diffkit conformance torch` loads
`diffkit.adapters.torch`; any other module or .py file that defines the same names works too.

An adapter defines `variable(x)` (the engine's differentiable value holding the float x),
`value(v)` (a float), `gradients(output, inputs)` (d output / d input for each input, in order),
`OPS` (diffkit primitive name -> the engine's callable on its values), and optionally `NAME`
and `PARAMS` (fixed parameters, e.g. {"leaky_relu": {"alpha": 0.01}}).
"""
