"""stackwatch: security monitoring and log management for OpenStack clouds."""

__version__ = "0.1.0"
