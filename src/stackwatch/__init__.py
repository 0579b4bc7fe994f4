"""stackwatch: security monitoring and log management for OpenStack clouds."""

from stackwatch import accel as _accel

__version__ = "0.1.0"

# before any hot module is imported: STACKWATCH_PURE_PYTHON=1 keeps the compiled ones out
_accel.install_switch()
