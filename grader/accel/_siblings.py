"""What the accelerator uses of the kit's other parts, wherever it runs.

Inside the kit that is ``grader.exact`` and ``solution.numerics``; beside a student's
notebook (the bundle's ``hw8_accel``) the same files travel as ``hw8_exact`` and
``hw8_numerics``. Relative imports elsewhere in the package do the rest.
"""

try:  # the kit: grader.accel next to grader.exact
    from ..exact import kernels as exact_kernels
    from ..exact import observe
    from solution import numerics
except ImportError:  # beside a notebook: hw8_accel next to hw8_exact and hw8_numerics
    from hw8_exact import kernels as exact_kernels  # type: ignore[no-redef]
    from hw8_exact import observe  # type: ignore[no-redef]
    import hw8_numerics as numerics  # type: ignore[no-redef]

__all__ = ["exact_kernels", "numerics", "observe"]
