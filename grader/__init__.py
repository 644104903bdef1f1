"""The HW8 autograder (see ARCHITECTURE.md). Importing it pins the kit's numerical mode first."""

from solution import numerics as _numerics

_numerics.pin()
