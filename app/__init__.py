"""CloudWizard: self-hostable AWS security-posture backend."""

__version__ = "0.1.0"
