"""Mixed-mode transforms, forward over reverse: the Hessian and Hessian-vector products.
They sit above both modes (reverse and forward import nothing from each other)."""

from __future__ import annotations

from diffkit.forward import jacfwd, jvp
from diffkit.reverse import grad


def hessian(f, argnums=0):
    """Return a function computing the Hessian of scalar-valued f (forward-over-reverse).

    For one argument of shape s the result has shape s + s; with a tuple of argnums it is a
    tuple of tuples of blocks, as in JAX: block [i][j] is d2f / (d arg_i d arg_j), shaped
    arg_i.shape + arg_j.shape.

    Example:
        >>> hessian(lambda x, y: x * x * y, argnums=(0, 1))(1.0, 2.0)
        ((4.0, 2.0), (2.0, 0.0))
    """
    return jacfwd(grad(f, argnums), argnums)


def hvp(f, primals, tangents):
    """Return the Hessian-vector products H @ tangents of scalar f, forward-over-reverse.

    Example:
        >>> hvp(lambda x: x**3, (2.0,), (1.0,))
        (12.0,)
    """
    argnums = tuple(range(len(primals)))
    return jvp(lambda *xs: grad(f, argnums)(*xs), primals, tangents)[1]
